/**
 * The `cluster` Env kind through `Corps.layer`, with the embedded (local)
 * storage: the same handles and calls as every other Env.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import { ClusterEnv } from "../../src/cluster/index.ts"
import { Corps } from "../../src/index.ts"
import { Account, AccountLive, Hasher, HasherLive } from "./workers.ts"

const module = new URL("./workers.ts", import.meta.url).href

const App = Corps.layer([AccountLive, HasherLive], {
  module,
  placement: { envs: { c: { kind: "cluster", storage: "local" } }, default: "c" }
}).pipe(Layer.provide(ClusterEnv.layer()))

describe("cluster/ClusterEnv (local storage)", () => {
  it.live("Workers placed in a cluster Env are called through their handles", () =>
    Effect.gen(function* () {
      const account = yield* Account
      assert.strictEqual(yield* account.deposit({ amount: 4 }), 4)
      const other = account.instance("other")
      assert.strictEqual(yield* other.deposit({ amount: 1 }), 1)
      assert.strictEqual(yield* account.balance(), 4)
      const exit = yield* Effect.exit(account.withdraw({ amount: 9 }))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = Cause.findErrorOption(exit.cause)
        assert.strictEqual(error._tag === "Some" ? (error.value as any)._tag : undefined, "Overdrawn")
      }
      const hasher = yield* Hasher
      assert.strictEqual(yield* hasher.hash({ text: "ab" }), "h:2:ab")
      // Persisted (idempotent) methods work with the embedded storage too.
      assert.strictEqual(yield* account.where(), process.pid)
    }).pipe(Effect.provide(App), Effect.scoped)
  )

  it.live("without a provider the cluster kind is a PlacementError", () =>
    Effect.gen(function* () {
      const bare = Corps.layer([AccountLive], {
        module,
        placement: { envs: { c: { kind: "cluster", storage: "local" } }, default: "c" }
      })
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(bare)))
      assert.isTrue(Exit.isFailure(exit))
    })
  )
})

/**
 * The `cluster` Env kind through `Corps.layer`, with the embedded (local)
 * storage: the same handles and calls as every other Env.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Stream } from "effect"
import { ClusterEnv } from "../../src/cluster/index.ts"
import { Corps } from "../../src/index.ts"
import { Account, AccountLive, Hasher, HasherLive, Loose, LooseLive } from "./workers.ts"

const module = new URL("./workers.ts", import.meta.url).href

const App = Corps.layer([AccountLive, HasherLive, LooseLive], {
  module,
  placement: { envs: { c: { kind: "cluster", storage: "local" } }, default: "c" }
}).pipe(Layer.provide(ClusterEnv.layer()))

const failureOf = (exit: Exit.Exit<unknown, unknown>): any => {
  if (Exit.isSuccess(exit)) return assert.fail(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" ? error.value : Cause.squash(exit.cause)
}

describe("cluster/ClusterEnv (local storage)", () => {
  it.live("functions and symbols are refused with SerializationError, never dropped or reported as CallLost", () =>
    Effect.gen(function* () {
      const loose = yield* Loose
      const account = yield* Account
      // Payloads: a function or a symbol anywhere, even where the Schema lets anything through.
      for (const payload of [{ ok: 1, f: () => 1 }, { ok: 1, s: Symbol("s") }, [1, { deep: () => 1 }], () => 1]) {
        const error = failureOf(yield* Effect.exit(loose.echo(payload)))
        assert.deepStrictEqual([error._tag, error.part], ["SerializationError", "payload"])
      }
      // A field declared Schema.Number holding a function fails its Schema, as before.
      const typed = failureOf(yield* Effect.exit(account.deposit({ amount: (() => 1) as any })))
      assert.deepStrictEqual([typed._tag, typed.part], ["SerializationError", "payload"])
      // Results.
      for (const what of ["function", "symbol"] as const) {
        const error = failureOf(yield* Effect.exit(loose.give({ what })))
        assert.deepStrictEqual([error._tag, error.part], ["SerializationError", "success"])
        assert.include(error.message, what)
      }
      // Stream elements: the first one arrives, the second fails the stream.
      const seen: Array<unknown> = []
      const streamed = failureOf(
        yield* Effect.exit(Stream.runForEach(loose.items(), (item) => Effect.sync(() => seen.push(item))))
      )
      assert.deepStrictEqual(seen, [{ ok: 1 }])
      assert.deepStrictEqual([streamed._tag, streamed.part], ["SerializationError", "success"])
      // Plain data still crosses, whole.
      assert.deepStrictEqual(yield* loose.echo({ ok: 1, nested: [1, "a", null, { b: true }] }), {
        ok: 1,
        nested: [1, "a", null, { b: true }]
      })
    }).pipe(Effect.provide(App), Effect.scoped)
  )

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

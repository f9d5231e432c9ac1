import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Corps, Worker } from "../src/index.ts"
import { Ledger, LedgerLive } from "./fixtures/workers.ts"

class Branch extends Worker.Service<Branch>()("Branch", {
  deposit: { payload: { amount: Schema.Number }, success: Schema.Number }
}) {}

class Vault extends Worker.Service<Vault>()("Vault", {
  deposit: { payload: { amount: Schema.Number }, success: Schema.Number }
}) {}

const depositThroughLedger = Effect.gen(function* () {
  const ledger = yield* Ledger
  return { deposit: ({ amount }: { readonly amount: number }) => Effect.orDie(ledger.record({ amount })) }
})

const BranchLive = Corps.make(Branch.func(depositThroughLedger), { members: [LedgerLive] })
const VaultLive = Corps.make(Vault.func(depositThroughLedger), { members: [LedgerLive] })

describe("Corps", () => {
  for (const checkSerialization of [false, true]) {
    it.live(`private members with the same Worker name stay apart (checkSerialization: ${checkSerialization})`, () =>
      Effect.gen(function* () {
        const branch = yield* Branch
        const vault = yield* Vault
        assert.strictEqual(yield* branch.deposit({ amount: 10 }), 10)
        assert.strictEqual(yield* vault.deposit({ amount: 1 }), 1)
        assert.strictEqual(yield* branch.deposit({ amount: 5 }), 15)
      }).pipe(
        Effect.provide(
          Corps.layer([BranchLive, VaultLive], {
            placement: { envs: { here: { kind: "local", checkSerialization } }, default: "here" }
          })
        ),
        Effect.scoped
      )
    )
  }

  it.live("a Func's cleanup can still call the Workers built before it", () =>
    Effect.gen(function* () {
      const seen: Array<number> = []
      class Closer extends Worker.Service<Closer>()("Closer", { noop: {} }) {}
      const CloserLive = Closer.func(
        Effect.gen(function* () {
          const ledger = yield* Ledger
          yield* Effect.addFinalizer(() =>
            ledger.record({ amount: 1 }).pipe(
              Effect.tap((total) => Effect.sync(() => seen.push(total))),
              Effect.ignore
            )
          )
          return { noop: () => undefined }
        })
      )
      yield* Effect.scoped(Effect.provide(Effect.void, Corps.layer([LedgerLive, CloserLive])))
      assert.deepStrictEqual(seen, [1])
    })
  )
})

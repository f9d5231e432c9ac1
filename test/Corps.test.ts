import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Schema, Stream } from "effect"
import { Corps, CorpsError, Worker } from "../src/index.ts"
import { BankLive, Counter, Ledger, LedgerLive } from "./fixtures/workers.ts"

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

  describe("a Worker the Corps does not provide", () => {
    /** The defect `effect` dies with, which must be a WorkerNotProvided. */
    const notProvided = (effect: Effect.Effect<unknown, unknown, unknown>) =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(effect as Effect.Effect<unknown, unknown>)
        assert.isTrue(Exit.isFailure(exit))
        const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        assert.instanceOf(defect, CorpsError.WorkerNotProvided)
        return defect as CorpsError.WorkerNotProvided
      })

    // A program that needs Counter, given a Corps without it by a cast that silences the type-checker.
    const withoutCounter = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.provide(effect, Corps.layer([BranchLive, VaultLive], { name: "shop", placement: {} }) as Layer.Layer<any>)

    it.effect("yield* of the Worker names the Worker, the Corps and what it provides", () =>
      Effect.gen(function* () {
        const error = yield* notProvided(withoutCounter(Effect.asVoid(Counter)))
        assert.strictEqual(error._tag, "WorkerNotProvided")
        assert.strictEqual(error.worker, "Counter")
        assert.deepStrictEqual(error.corps, ["shop"])
        assert.deepStrictEqual(error.provided, ["Branch", "Vault"])
        assert.deepStrictEqual(error.privateTo, [])
        assert.strictEqual(
          error.message,
          `Worker Counter is not in Corps "shop" (it provides: Branch, Vault): add an implementation of Counter to its members`
        )
      })
    )

    it.effect("accessors, instance and use fail the same way", () =>
      Effect.gen(function* () {
        const accessor = yield* notProvided(withoutCounter(Counter.increment({ by: 1 })))
        assert.strictEqual(accessor.worker, "Counter")
        assert.deepStrictEqual(accessor.corps, ["shop"])
        const instance = yield* notProvided(withoutCounter(Counter.instance("a")))
        assert.strictEqual(instance.worker, "Counter")
        const used = yield* notProvided(withoutCounter(Counter.use((counter) => counter.get())))
        assert.strictEqual(used.worker, "Counter")
        const stream = yield* notProvided(withoutCounter(Stream.runCollect(Counter.countdown({ from: 2 }))))
        assert.strictEqual(stream.worker, "Counter")
      })
    )

    it.effect("with no Corps in context, says so", () =>
      Effect.gen(function* () {
        const error = yield* notProvided(Counter as Effect.Effect<unknown, never, unknown>)
        assert.deepStrictEqual(error.corps, [])
        assert.deepStrictEqual(error.provided, [])
        assert.include(error.message, "no Corps is in context")
      })
    )

    it.effect("every Corps in context is named", () =>
      Effect.gen(function* () {
        const both = Layer.mergeAll(
          Corps.layer([BranchLive], { name: "front", placement: {} }),
          Corps.layer([BankLive], { name: "back", placement: {} })
        )
        const error = yield* notProvided(Effect.provide(Effect.asVoid(Counter), both as Layer.Layer<any>))
        assert.deepStrictEqual([...error.corps].sort(), ["back", "front"])
        assert.deepStrictEqual([...error.provided].sort(), ["Bank", "Branch"])
      })
    )

    it.effect("a private member of a nested Corps is named as such", () =>
      Effect.gen(function* () {
        const error = yield* notProvided(withoutCounter(Effect.asVoid(Ledger)))
        assert.strictEqual(error.worker, "Ledger")
        assert.deepStrictEqual(error.privateTo, ["Branch", "Vault"])
        assert.strictEqual(
          error.message,
          "Worker Ledger is a private member of Branch and Vault: only the implementation of Branch and Vault can use it"
        )
      })
    )

    it.effect("a member's builder that asks for a Worker the Corps lacks fails the build, naming the Corps", () =>
      Effect.gen(function* () {
        class Needy extends Worker.Service<Needy>()("Needy", { ping: { success: Schema.Number } }) {}
        const NeedyLive = Needy.func(
          Effect.gen(function* () {
            const counter = yield* Counter
            return { ping: () => Effect.orDie(counter.get()) }
          })
        )
        const error = yield* notProvided(
          Layer.build(Corps.layer([NeedyLive], { name: "needy", placement: {} }) as Layer.Layer<any>).pipe(
            Effect.scoped
          )
        )
        assert.strictEqual(error.worker, "Counter")
        assert.deepStrictEqual(error.corps, ["needy"])
        assert.deepStrictEqual(error.provided, ["Needy"])
      })
    )

    it.effect("a Worker the Corps provides is found as before", () =>
      Effect.gen(function* () {
        const branch = yield* withoutCounter(Effect.flatMap(Branch, (b) => b.deposit({ amount: 3 })))
        assert.strictEqual(branch, 3)
      })
    )
  })
})

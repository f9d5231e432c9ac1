import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Schema, Stream } from "effect"
import { TestRunner } from "effect/cluster"
import { CallLost, DownstreamFailed } from "../../src/CorpsError.ts"
import { deliveryOf, layerEntity, makeTargets } from "../../src/cluster/internal/Entities.ts"
import { Worker } from "../../src/index.ts"
import { Account, AccountLive, Hasher, HasherLive, Ledger } from "./workers.ts"

/** A Func whose handler lets a CallError through, as one meeting a lost downstream call would. */
class Relayer extends Worker.Service<Relayer>()("Relayer", { relay: { success: Schema.Number } }) {}
const RelayerLive = Relayer.func({
  relay: () => Effect.fail(new CallLost({ worker: "Far", method: "op", env: "far#0", reason: "gone" }))
})

/** A Conc whose builder fails for the first `failures.left` builds of each key (registering a finalizer first). */
class Flaky extends Worker.Service<Flaky>()("Flaky", {
  get: { success: Schema.String },
  ticks: { success: Schema.Number, stream: true }
}) {}
const flaky = { left: 0, finalized: 0, builds: 0 }
const FlakyLive = Flaky.conc((key) =>
  Effect.gen(function* () {
    flaky.builds++
    yield* Effect.addFinalizer(() => Effect.sync(() => flaky.finalized++))
    if (flaky.left > 0) {
      flaky.left--
      return yield* Effect.die(new Error(`${key} cannot start yet`))
    }
    return { get: () => `built ${key}`, ticks: () => Stream.make(1, 2) }
  })
)

// TestRunner: the whole cluster in memory, in this process. Cluster layers
// sleep internally, so these tests run on the live clock (it.live).
const Cluster = Layer.mergeAll(
  layerEntity(AccountLive),
  layerEntity(HasherLive),
  layerEntity(RelayerLive),
  layerEntity(FlakyLive)
).pipe(Layer.provideMerge(TestRunner.layer))

const run = <A, E>(effect: Effect.Effect<A, E, any>) =>
  Effect.scoped(effect).pipe(Effect.provide(Cluster)) as Effect.Effect<A, E>

const failureOf = (exit: Exit.Exit<unknown, unknown>): unknown => {
  assert.isTrue(Exit.isFailure(exit))
  if (Exit.isSuccess(exit)) return undefined
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" ? error.value : Cause.squash(exit.cause)
}

describe("cluster/Entities", () => {
  it("derives the delivery of each method from the contract and the options", () => {
    const delivery = deliveryOf(Ledger, { volatile: ["ping"] })
    assert.deepStrictEqual(Object.fromEntries(delivery), {
      record: "persisted",
      ping: "retry",
      where: "once",
      hold: "once"
    })
    const account = deliveryOf(Account, { persisted: ["deposit"] })
    assert.strictEqual(account.get("deposit"), "persisted")
    assert.strictEqual(account.get("where"), "persisted")
    assert.strictEqual(account.get("balance"), "once")
    assert.strictEqual(account.get("countdown"), "once")
  })

  it.live("a result or an error its Schema cannot carry is a SerializationError; the entity lives", () =>
    run(
      Effect.gen(function* () {
        const a = (yield* makeTargets(Account, "conc"))("misbehaving")
        const result = failureOf(yield* Effect.exit(a.call("misbehave", { what: "result" }))) as any
        assert.deepStrictEqual([result._tag, result.part], ["SerializationError", "success"])
        const error = failureOf(yield* Effect.exit(a.call("misbehave", { what: "error" }))) as any
        assert.deepStrictEqual([error._tag, error.part], ["SerializationError", "error"])
        assert.strictEqual(yield* a.call("deposit", { amount: 1 }), 1)
      })
    )
  )

  it.live("a Conc is one stateful entity per key", () =>
    run(
      Effect.gen(function* () {
        const targets = yield* makeTargets(Account, "conc")
        const a = targets("a")
        const b = targets("b")
        assert.strictEqual(yield* a.call("deposit", { amount: 5 }), 5)
        assert.strictEqual(yield* a.call("deposit", { amount: 2 }), 7)
        assert.strictEqual(yield* b.call("deposit", { amount: 1 }), 1)
        assert.strictEqual(yield* a.call("balance", undefined), 7)
      })
    )
  )

  it.live("typed errors pass through, defects become WorkerDefect and the entity lives", () =>
    run(
      Effect.gen(function* () {
        const a = (yield* makeTargets(Account, "conc"))("e")
        yield* a.call("deposit", { amount: 3 })
        const overdrawn = failureOf(yield* Effect.exit(a.call("withdraw", { amount: 10 }))) as any
        assert.strictEqual(overdrawn._tag, "Overdrawn")
        assert.strictEqual(overdrawn.balance, 3)
        const defect = failureOf(yield* Effect.exit(a.call("crash", { message: "boom" }))) as any
        assert.strictEqual(defect._tag, "WorkerDefect")
        assert.strictEqual(defect.method, "crash")
        assert.include(defect.message, "boom")
        // Readable across the cluster: name, message and stack as fields.
        assert.deepStrictEqual([defect.defectName, defect.defectMessage], ["Error", "boom"])
        assert.match(defect.defectStack, /^Error: boom\n\s+at /)
        // Same instance, state intact: the defect was not replayed.
        assert.strictEqual(yield* a.call("balance", undefined), 3)
      })
    )
  )

  it.live("a CallError a handler lets through reaches the caller as DownstreamFailed, decoded with its Schema", () =>
    run(
      Effect.gen(function* () {
        const relayer = (yield* makeTargets(Relayer, "func"))("default")
        const error = failureOf(yield* Effect.exit(relayer.call("relay", undefined)))
        assert.instanceOf(error, DownstreamFailed)
        const failed = error as DownstreamFailed
        assert.deepStrictEqual([failed.worker, failed.method, failed.via], ["Relayer", "relay", []])
        assert.instanceOf(failed.error, CallLost)
        assert.strictEqual((failed.error as CallLost).worker, "Far")
      })
    )
  )

  it.live("a failing builder fails the call with InstanceStartFailed; the next call builds again", () =>
    run(
      Effect.gen(function* () {
        flaky.left = 2
        const f = (yield* makeTargets(Flaky, "conc"))("k")
        const first = failureOf(yield* Effect.exit(f.call("get", undefined))) as any
        assert.deepStrictEqual([first._tag, first.worker, first.key], ["InstanceStartFailed", "Flaky", "k"])
        assert.include(first.reason, "k cannot start yet")
        // A stream's first call builds too, and fails the same way.
        const streamed = failureOf(yield* Effect.exit(Stream.runCollect(f.stream("ticks", undefined)))) as any
        assert.strictEqual(streamed._tag, "InstanceStartFailed")
        // The finalizers of each failed build ran; the third build succeeds and is kept.
        assert.strictEqual(flaky.finalized, 2)
        assert.strictEqual(yield* f.call("get", undefined), "built k")
        assert.deepStrictEqual([...(yield* Stream.runCollect(f.stream("ticks", undefined)))], [1, 2])
        assert.strictEqual(flaky.builds, 3)
      })
    )
  )

  it.live("a payload that fails its Schema is a SerializationError", () =>
    run(
      Effect.gen(function* () {
        const a = (yield* makeTargets(Account, "conc"))("s")
        const error = failureOf(yield* Effect.exit(a.call("deposit", { amount: "many" }))) as any
        assert.strictEqual(error._tag, "SerializationError")
        assert.strictEqual(yield* a.call("deposit", { amount: 1 }), 1)
      })
    )
  )

  it.live("unknown methods fail with UnknownMethod", () =>
    run(
      Effect.gen(function* () {
        const a = (yield* makeTargets(Account, "conc"))("u")
        const error = failureOf(yield* Effect.exit(a.call("nope", {}))) as any
        assert.strictEqual(error._tag, "UnknownMethod")
      })
    )
  )

  it.live("streams", () =>
    run(
      Effect.gen(function* () {
        const a = (yield* makeTargets(Account, "conc"))("st")
        const items = yield* Stream.runCollect(a.stream("countdown", { from: 3 }))
        assert.deepStrictEqual([...items], [3, 2, 1])
      })
    )
  )

  it.live("a Func is served by slots, round robin", () =>
    run(
      Effect.gen(function* () {
        const h = (yield* makeTargets(Hasher, "func", { funcSlots: 8 }))("ignored")
        const results = yield* Effect.forEach(["a", "bb", "ccc"], (text) => h.call("hash", { text }), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(results, ["h:1:a", "h:2:bb", "h:3:ccc"])
      })
    )
  )
})

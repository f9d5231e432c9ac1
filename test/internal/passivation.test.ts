/**
 * Passivation of Conc instances, driven on ConcWorker directly: the draining
 * API (`passivate`, `passivateIdle`, `liveKeys`) and the `passivateAfter`
 * sweeper under TestClock. A passivated instance's finalizers run, it leaves
 * the map, the next call builds it again; a busy one (a call running or
 * queued, a concurrent method running, a stream open) is never touched, and a
 * call that meets an instance while it closes waits, then gets a fresh one.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { type ConcShared, ConcWorker } from "../../src/internal/conc.ts"
import { sweeper } from "../../src/internal/passivation.ts"

/** Forks `effect` and runs it at once, up to its first suspension. */
const start = <A, E>(effect: Effect.Effect<A, E>) => Effect.forkChild(effect, { startImmediately: true })

/**
 * A Conc "W" whose instances count their calls (`next`), can be held
 * (`hold` waits for `gate`), stream (`ticks`, open until `gate`), and run a
 * concurrent `peek`. Every build and every finalizer is recorded; a
 * finalizer may be made to wait on `finalizerGate`.
 */
const makeCounters = (options?: { readonly tracked?: boolean; readonly finalizerGate?: Deferred.Deferred<void> }) => {
  const builds: Array<string> = []
  const finalized: Array<string> = []
  const passivated: Array<{ key: string; idleMillis: number | undefined }> = []
  const gate = Deferred.makeUnsafe<void>()
  const holding = Deferred.makeUnsafe<void>()
  const shared: ConcShared = {
    worker: "W",
    corps: "corps-test",
    closed: false,
    mailbox: { capacity: 1024, onFull: "suspend" },
    concurrent: new Set(["peek"]),
    tracked: options?.tracked ?? true,
    onPassivate: (key, idleMillis) => Effect.sync(() => passivated.push({ key, idleMillis })),
    build: (key, scope) =>
      Effect.gen(function* () {
        builds.push(key)
        let count = 0
        yield* Effect.addFinalizer(() =>
          Effect.andThen(
            options?.finalizerGate === undefined ? Effect.void : Deferred.await(options.finalizerGate),
            Effect.sync(() => finalized.push(key))
          )
        )
        return {
          next: () => ++count,
          hold: () => Effect.andThen(Deferred.succeed(holding, undefined), Effect.as(Deferred.await(gate), ++count)),
          peek: () => Effect.andThen(Deferred.succeed(holding, undefined), Effect.as(Deferred.await(gate), count)),
          ticks: () =>
            Stream.concat(
              Stream.make(1, 2),
              Stream.fromEffectDrain(Effect.andThen(Deferred.succeed(holding, undefined), Deferred.await(gate)))
            )
        }
      }).pipe(Scope.provide(scope))
  }
  const worker = new ConcWorker(shared)
  return { worker, shared, builds, finalized, passivated, gate, holding }
}

describe("ConcWorker.passivate", () => {
  it.effect("closes an idle instance: finalizers run, it leaves the map, the next call builds it again", () =>
    Effect.gen(function* () {
      const { worker, builds, finalized, passivated } = makeCounters()
      yield* worker.instance("a").call("next", undefined)
      assert.strictEqual(yield* worker.instance("a").call("next", undefined), 2)
      assert.deepStrictEqual(worker.liveKeys(), ["a"])
      assert.isTrue(yield* worker.passivate("a"))
      assert.deepStrictEqual(finalized, ["a"])
      assert.isFalse(worker.instances.has("a"))
      assert.deepStrictEqual(worker.liveKeys(), [])
      assert.deepStrictEqual(passivated, [{ key: "a", idleMillis: undefined }])
      // Fresh state: the count starts again.
      assert.strictEqual(yield* worker.instance("a").call("next", undefined), 1)
      assert.deepStrictEqual(builds, ["a", "a"])
    })
  )

  it.effect("answers true for a key with no instance, and reports nothing for an instance never built", () =>
    Effect.gen(function* () {
      const { worker, passivated } = makeCounters()
      assert.isTrue(yield* worker.passivate("nobody"))
      worker.instance("shell")
      assert.deepStrictEqual(worker.liveKeys(), [])
      assert.isTrue(yield* worker.passivate("shell"))
      assert.isFalse(worker.instances.has("shell"))
      assert.deepStrictEqual(passivated, [])
    })
  )

  it.effect("leaves a busy instance alone (a call running, then calls queued) and answers false", () =>
    Effect.gen(function* () {
      const { worker, finalized, gate, holding } = makeCounters()
      const held = yield* start(worker.instance("a").call("hold", undefined))
      yield* Deferred.await(holding)
      assert.isFalse(yield* worker.passivate("a"))
      const queued = yield* start(worker.instance("a").call("next", undefined))
      assert.strictEqual(worker.instance("a").pending, 1)
      assert.isFalse(yield* worker.passivate("a"))
      assert.deepStrictEqual(yield* worker.passivateIdle(), ["a"])
      assert.deepStrictEqual(finalized, [])
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(held), 1)
      // The queued call ran on the same instance: nothing was lost or reset.
      assert.strictEqual(yield* Fiber.join(queued), 2)
      assert.isTrue(yield* worker.passivate("a"))
      assert.deepStrictEqual(finalized, ["a"])
    })
  )

  it.effect("leaves an instance alone while a concurrent method runs or a stream is open", () =>
    Effect.gen(function* () {
      const { worker, finalized, gate, holding } = makeCounters()
      yield* worker.instance("a").call("next", undefined)
      const peeking = yield* start(worker.instance("a").call("peek", undefined))
      yield* Deferred.await(holding)
      assert.isFalse(yield* worker.passivate("a"))
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(peeking), 1)
      assert.isTrue(yield* worker.passivate("a"))

      const second = makeCounters()
      const streaming = yield* start(Stream.runCollect(second.worker.instance("s").stream("ticks", undefined)))
      yield* Deferred.await(second.holding)
      assert.isFalse(yield* second.worker.passivate("s"))
      assert.deepStrictEqual(second.worker.liveKeys(), ["s"])
      yield* Deferred.succeed(second.gate, undefined)
      assert.deepStrictEqual(yield* Fiber.join(streaming), [1, 2])
      assert.isTrue(yield* second.worker.passivate("s"))
      assert.deepStrictEqual(second.finalized, ["s"])
      assert.deepStrictEqual(finalized, ["a"])
    })
  )

  it.effect("a call that arrives while the instance closes waits, then meets a fresh one, in order", () =>
    Effect.gen(function* () {
      const finalizerGate = yield* Deferred.make<void>()
      const { worker, builds, finalized } = makeCounters({ finalizerGate })
      const old = worker.instance("a")
      yield* old.call("next", undefined)
      yield* old.call("next", undefined)
      const closing = yield* start(worker.passivate("a"))
      // Through the old instance (a handle made before) and through the map: both wait for the finalizer.
      const viaOld = yield* start(Effect.all([old.call("next", undefined), old.call("next", undefined)]))
      const viaMap = yield* start(worker.instance("a").call("next", undefined))
      assert.deepStrictEqual(finalized, [])
      assert.isUndefined(viaOld.pollUnsafe())
      yield* Deferred.succeed(finalizerGate, undefined)
      assert.isTrue(yield* Fiber.join(closing))
      const [first, second] = (yield* Fiber.join(viaOld)) as [number, number]
      const third = (yield* Fiber.join(viaMap)) as number
      // One fresh instance took all three calls (1, 2, 3 in some interleaving of the two callers).
      assert.deepStrictEqual([first, second, third].sort(), [1, 2, 3])
      assert.isBelow(first, second)
      assert.deepStrictEqual(builds, ["a", "a"])
      assert.deepStrictEqual(finalized, ["a"])
      assert.strictEqual(worker.instances.size, 1)
      // The old object keeps forwarding to the live one.
      assert.strictEqual(yield* old.call("next", undefined), 4)
      assert.strictEqual(old.current(), worker.instance("a"))
    })
  )

  it.effect("passivateIdle closes every idle instance and answers the busy keys", () =>
    Effect.gen(function* () {
      const { worker, finalized, gate, holding, passivated } = makeCounters()
      for (const key of ["a", "b", "c"]) yield* worker.instance(key).call("next", undefined)
      const held = yield* start(worker.instance("b").call("hold", undefined))
      yield* Deferred.await(holding)
      assert.deepStrictEqual(yield* worker.passivateIdle(), ["b"])
      assert.deepStrictEqual(finalized.sort(), ["a", "c"])
      assert.deepStrictEqual(passivated.map((p) => p.key).sort(), ["a", "c"])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(held)
      assert.deepStrictEqual(yield* worker.passivateIdle(), [])
      assert.strictEqual(worker.instances.size, 0)
    })
  )
})

describe("passivateAfter sweeper (TestClock)", () => {
  /** Moves the test clock on by `millis`, letting the woken sweeper finish its sweep. */
  const advance = (millis: number) => Effect.andThen(TestClock.adjust(millis), Effect.yieldNow)

  it.effect("retires an instance idle for passivateAfter (not before), with its idle time", () =>
    Effect.gen(function* () {
      const { worker, builds, finalized, passivated } = makeCounters()
      yield* Effect.forkScoped(sweeper(worker, 1000))
      yield* worker.instance("a").call("next", undefined)
      yield* worker.instance("b").call("next", undefined)
      yield* advance(600)
      // "b" keeps being used: each call starts its count again.
      yield* worker.instance("b").call("next", undefined)
      yield* advance(500)
      yield* worker.instance("b").call("next", undefined)
      assert.deepStrictEqual(finalized, [])
      yield* advance(400)
      // Sweeps at 500, 1000 and 1500 ms found "a" unused: retired at the third.
      assert.deepStrictEqual(finalized, ["a"])
      assert.deepStrictEqual(passivated, [{ key: "a", idleMillis: 1000 }])
      assert.deepStrictEqual(worker.liveKeys(), ["b"])
      yield* advance(1500)
      assert.deepStrictEqual(finalized, ["a", "b"])
      assert.strictEqual(worker.instances.size, 0)
      assert.strictEqual(yield* worker.instance("a").call("next", undefined), 1)
      assert.deepStrictEqual(builds, ["a", "b", "a"])
    }).pipe(Effect.scoped)
  )

  it.effect("never retires an instance while a call holds it across sweeps, nor one with queued calls", () =>
    Effect.gen(function* () {
      const { worker, finalized, gate, holding } = makeCounters()
      yield* Effect.forkScoped(sweeper(worker, 1000))
      const held = yield* start(worker.instance("a").call("hold", undefined))
      yield* Deferred.await(holding)
      const queued = yield* start(worker.instance("a").call("next", undefined))
      yield* advance(5000)
      assert.deepStrictEqual(finalized, [])
      assert.deepStrictEqual(worker.liveKeys(), ["a"])
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(held), 1)
      assert.strictEqual(yield* Fiber.join(queued), 2)
      // Idle from now: retired within 1.5 × passivateAfter.
      yield* advance(1000)
      assert.deepStrictEqual(finalized, [])
      yield* advance(500)
      assert.deepStrictEqual(finalized, ["a"])
    }).pipe(Effect.scoped)
  )

  it.effect("stops with its scope; closing the Conc still closes the live instances", () =>
    Effect.gen(function* () {
      const { worker, finalized } = makeCounters()
      const scope = yield* Scope.make()
      yield* Effect.forkIn(sweeper(worker, 1000), scope)
      yield* worker.instance("a").call("next", undefined)
      yield* Scope.close(scope, Exit.void)
      yield* advance(5000)
      assert.deepStrictEqual(finalized, [])
      yield* worker.close(Exit.void)
      assert.deepStrictEqual(finalized, ["a"])
    })
  )
})

/**
 * `passivateAfter` through `Corps.layer`, in the caller's runtime (TestClock
 * drives the sweeper): an idle instance's finalizers run and it is reported
 * as `InstancePassivated`, the next call builds it again, a persisted one
 * resumes its state; invalid values fail the Corps' build with
 * `WorkerOptionError`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, PubSub, Schema } from "effect"
import { TestClock } from "effect/testing"
import { WorkerOptionError } from "../src/CorpsError.ts"
import { Corps, State, Worker } from "../src/index.ts"

class Counter extends Worker.Service<Counter>()("Counter", {
  add: { payload: { by: Schema.Number }, success: Schema.Number }
}) {}

const makeCounter = (passivateAfter: Duration.Input | undefined) => {
  const log = { builds: 0, finalized: [] as Array<string> }
  const impl = Counter.conc(
    (key) =>
      Effect.gen(function* () {
        log.builds++
        let n = 0
        yield* Effect.addFinalizer(() => Effect.sync(() => log.finalized.push(key)))
        return { add: ({ by }) => (n += by) }
      }),
    { passivateAfter }
  )
  return { impl, log }
}

/** Moves the test clock on, then lets the woken sweeper finish. */
const advance = (millis: number) => Effect.andThen(TestClock.adjust(millis), Effect.yieldNow)

describe("passivateAfter (caller's runtime)", () => {
  it.effect("an idle instance is passivated: finalizers ran, event reported, the next call starts afresh", () => {
    const { impl, log } = makeCounter("1 minute")
    return Effect.gen(function* () {
      const hub = yield* Corps.Events
      const events = yield* PubSub.subscribe(hub.pubsub)
      const counter = yield* Counter
      assert.strictEqual(yield* counter.instance("a").add({ by: 2 }), 2)
      assert.strictEqual(yield* counter.instance("a").add({ by: 2 }), 4)
      yield* advance(Duration.toMillis("59 seconds"))
      assert.deepStrictEqual(log.finalized, [])
      yield* advance(Duration.toMillis("31 seconds"))
      assert.deepStrictEqual(log.finalized, ["a"])
      const event = yield* PubSub.take(events)
      assert.strictEqual(event._tag, "InstancePassivated")
      if (event._tag === "InstancePassivated") {
        assert.strictEqual(event.worker, "Counter")
        assert.strictEqual(event.key, "a")
        assert.strictEqual(event.idleMillis, 60_000)
        assert.isUndefined(event.env)
      }
      // The same handle: its old instance forwards to the fresh one.
      assert.strictEqual(yield* counter.instance("a").add({ by: 1 }), 1)
      assert.strictEqual(log.builds, 2)
    }).pipe(Effect.scoped, Effect.provide(Corps.layer([impl], { placement: {} })))
  })

  it.effect("closing the Corps stops the sweeper and still closes every live instance", () => {
    const { impl, log } = makeCounter("1 minute")
    return Effect.gen(function* () {
      yield* Effect.scoped(
        Effect.gen(function* () {
          const counter = yield* Counter
          yield* counter.instance("a").add({ by: 1 })
          yield* counter.instance("b").add({ by: 1 })
        }).pipe(Effect.provide(Corps.layer([impl], { placement: {} })))
      )
      assert.deepStrictEqual(log.finalized.sort(), ["a", "b"])
      yield* advance(Duration.toMillis("5 minutes"))
      assert.deepStrictEqual(log.finalized.sort(), ["a", "b"])
    })
  })

  it.effect("a persisted Conc keeps its state across passivation", () => {
    let builds = 0
    const impl = Counter.conc(
      (_key, state: State.Ref<{ readonly n: number }>) =>
        Effect.sync(() => {
          builds++
          return { add: ({ by }: { readonly by: number }) => state.update((s) => ({ n: s.n + by })).n }
        }),
      {
        passivateAfter: "10 seconds",
        // Written on close only: passivation's normal exit flushes it.
        state: {
          schema: Schema.Struct({ n: Schema.Number }),
          initial: { n: 0 },
          store: State.memory(),
          commit: { every: 100 }
        }
      }
    )
    return Effect.gen(function* () {
      const counter = yield* Counter
      assert.strictEqual(yield* counter.add({ by: 3 }), 3)
      assert.strictEqual(yield* counter.add({ by: 4 }), 7)
      yield* advance(Duration.toMillis("15 seconds"))
      assert.strictEqual(yield* counter.add({ by: 1 }), 8)
      assert.strictEqual(builds, 2)
    }).pipe(Effect.scoped, Effect.provide(Corps.layer([impl], { placement: {} })))
  })

  it.effect("Infinity means never", () => {
    const { impl, log } = makeCounter("Infinity")
    return Effect.gen(function* () {
      const counter = yield* Counter
      yield* counter.add({ by: 1 })
      yield* advance(Duration.toMillis("1 day"))
      assert.deepStrictEqual(log.finalized, [])
      assert.strictEqual(yield* counter.add({ by: 1 }), 2)
    }).pipe(Effect.scoped, Effect.provide(Corps.layer([impl], { placement: {} })))
  })

  for (const [label, value] of [
    ["0", 0],
    ["a negative duration", -1000],
    ["NaN", Number.NaN],
    ["an unreadable string", "soon"]
  ] as const) {
    it.effect(`${label} fails the Corps' build with WorkerOptionError`, () =>
      Effect.gen(function* () {
        const { impl, log } = makeCounter(value as Duration.Input)
        const error = yield* Effect.flip(Layer.build(Corps.layer([impl], { placement: {} })))
        assert.instanceOf(error, WorkerOptionError)
        if (error instanceof WorkerOptionError) {
          assert.strictEqual(error.worker, "Counter")
          assert.strictEqual(error.option, "passivateAfter")
          assert.include(error.message, "must be a positive duration")
        }
        assert.strictEqual(log.builds, 0)
      }).pipe(Effect.scoped)
    )
  }

  it.effect("a private member's invalid passivateAfter fails its Corps too", () =>
    Effect.gen(function* () {
      class Front extends Worker.Service<Front>()("Front", { ping: { success: Schema.String } }) {}
      const { impl } = makeCounter(0)
      const front = Corps.make(Front.func({ ping: () => "pong" }), { members: [impl] })
      const error = yield* Effect.flip(Layer.build(Corps.layer([front], { placement: {} })))
      assert.instanceOf(error, WorkerOptionError)
    }).pipe(Effect.scoped)
  )
})

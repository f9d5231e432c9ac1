/**
 * Worker contracts: definition-time checks, static accessors, instance
 * handles, the Handle Schema, and how Func and Conc implementations run.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Schema, Stream } from "effect"
import { Corps, Worker } from "../src/index.ts"
import { Counter, Gate, GateLive, members } from "./fixtures/workers.ts"

const gateCorps = Corps.layer([GateLive], { placement: {} })
const suiteCorps = Corps.layer(members, { placement: {} }).pipe(Layer.provideMerge(gateCorps))

/** A stateless Worker whose calls the tests hold inside the handler. */
class Probe extends Worker.Service<Probe>()("Probe", {
  work: { success: Schema.Number }
}) {}

/**
 * A Probe implementation counting calls inside the handler at once: every
 * call waits on `gate` while inside.
 */
const probe = (options?: Worker.FuncOptions) => {
  const state = { running: 0, max: 0, completed: 0 }
  const gate = Deferred.makeUnsafe<void>()
  const live = Probe.func(
    {
      work: () =>
        Effect.gen(function* () {
          state.running++
          state.max = Math.max(state.max, state.running)
          yield* Deferred.await(gate).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                state.running--
              })
            )
          )
          state.completed++
          return state.max
        })
    },
    options
  )
  return { state, gate, live }
}

/** A stateful Worker whose builder dies on its first run only. */
class Flaky extends Worker.Service<Flaky>()("Flaky", {
  ping: { success: Schema.String },
  builds: { success: Schema.Number }
}) {}

describe("Worker", () => {
  describe("Service", () => {
    for (const name of ["use", "instance", "key", "conc", "func", "Handle"]) {
      it(`a method named "${name}" is refused at definition`, () => {
        assert.throws(
          () => Worker.Service<unknown>()("Clash", { ok: {}, [name]: {} }),
          `Worker Clash: method name "${name}" is reserved; rename it`
        )
      })
    }

    it("exposes the contract and its RPC group", () => {
      assert.deepStrictEqual(Object.keys(Probe.methods), ["work"])
      assert.deepStrictEqual([...Probe.group.requests.keys()], ["work"])
      assert.strictEqual(Probe.key, "Probe")
    })
  })

  describe("accessors", () => {
    it.effect("static accessors call the default instance of the Worker in context", () =>
      Effect.gen(function* () {
        assert.strictEqual(yield* Counter.incrementSync({ by: 2 }), 2)
        assert.strictEqual(yield* Counter.increment({ by: 3 }), 5)
        assert.strictEqual(yield* Counter.get(), 5)
        assert.strictEqual(yield* (yield* Counter).get(), 5)
        const error = yield* Effect.flip(Counter.withdraw({ amount: 9 }))
        assert.strictEqual(error._tag, "Overdrawn")
      }).pipe(Effect.provide(suiteCorps))
    )

    it.effect("a streaming accessor is a Stream", () =>
      Effect.gen(function* () {
        const values = yield* Stream.runCollect(Counter.countdown({ from: 3 }))
        assert.deepStrictEqual([...values], [3, 2, 1])
      }).pipe(Effect.provide(suiteCorps))
    )

    it.effect("Worker.instance(key) is a handle to instance key", () =>
      Effect.gen(function* () {
        const k = yield* Counter.instance("k")
        assert.strictEqual(k.key, "k")
        assert.strictEqual(k.worker, "Counter")
        yield* k.incrementSync({ by: 7 })
        const counter = yield* Counter
        assert.strictEqual(counter.key, "default")
        assert.strictEqual(yield* counter.instance("k").get(), 7)
        assert.strictEqual(yield* counter.get(), 0)
        assert.strictEqual(k.instance("k"), k)
        assert.strictEqual(k.instance("default").key, "default")
        assert.strictEqual(yield* k.instance("default").get(), 0)
      }).pipe(Effect.provide(suiteCorps))
    )
  })

  describe("Handle Schema", () => {
    it.effect("encodes a handle to {corps, worker, key} and decodes it to a handle of the same instance", () =>
      Effect.gen(function* () {
        const counter = yield* Counter
        const handle = counter.instance("h")
        yield* handle.incrementSync({ by: 4 })
        const encoded = Schema.encodeSync(Counter.Handle)(handle)
        assert.deepStrictEqual(encoded, { corps: counter.corps, worker: "Counter", key: "h" })
        assert.match(counter.corps, /^corps-/)
        const decoded = Schema.decodeSync(Counter.Handle)(encoded)
        assert.isTrue(Worker.isHandle(decoded))
        assert.strictEqual(decoded.key, "h")
        assert.strictEqual(decoded.corps, counter.corps)
        assert.strictEqual(yield* decoded.incrementSync({ by: 1 }), 5)
        assert.strictEqual(yield* handle.get(), 5)
        // The encoded form survives JSON, as it must to cross an Env.
        const viaJson = Schema.decodeSync(Counter.Handle)(JSON.parse(JSON.stringify(encoded)))
        assert.strictEqual(yield* viaJson.get(), 5)
      }).pipe(Effect.provide(suiteCorps))
    )

    it.effect("a handle of an unknown Corps decodes, and its calls fail with UnknownWorker", () =>
      Effect.gen(function* () {
        const decoded = Schema.decodeSync(Counter.Handle)({ corps: "corps-nowhere", worker: "Counter", key: "k" })
        assert.isTrue(Worker.isHandle(decoded))
        assert.strictEqual(decoded.corps, "corps-nowhere")
        const error = yield* Effect.flip(decoded.get())
        assert.strictEqual(error._tag, "UnknownWorker")
        assert.deepStrictEqual(error._tag === "UnknownWorker" ? [error.worker, error.corps] : [], [
          "Counter",
          "corps-nowhere"
        ])
        const streamed = yield* Effect.flip(Stream.runCollect(decoded.countdown({ from: 2 })))
        assert.strictEqual(streamed._tag, "UnknownWorker")
      })
    )

    it.effect("a handle of a closed Corps decodes to one whose calls fail with UnknownWorker", () =>
      Effect.gen(function* () {
        const encoded = yield* Effect.scoped(
          Effect.map(Counter, (counter) => Schema.encodeSync(Counter.Handle)(counter.instance("gone"))).pipe(
            Effect.provide(Corps.layer(members, { placement: {} }))
          )
        )
        const error = yield* Effect.flip(Schema.decodeSync(Counter.Handle)(encoded).get())
        assert.strictEqual(error._tag, "UnknownWorker")
      }).pipe(Effect.provide(gateCorps))
    )

    it("refuses a handle of another Worker", () => {
      assert.throws(() => Schema.decodeUnknownSync(Counter.Handle)({ corps: "c", worker: "Gate", key: "k" }))
    })

    it.effect("refuses to encode a handle of another Worker", () =>
      Effect.gen(function* () {
        const gate = yield* Gate
        assert.throws(() => Schema.encodeUnknownSync(Counter.Handle)(gate))
      }).pipe(Effect.provide(gateCorps))
    )
  })

  describe("isHandle", () => {
    it.effect("is true of handles only", () =>
      Effect.gen(function* () {
        const counter = yield* Counter
        assert.isTrue(Worker.isHandle(counter))
        assert.isTrue(Worker.isHandle(counter.instance("x")))
        assert.isFalse(Worker.isHandle({ corps: counter.corps, worker: "Counter", key: "default" }))
        assert.isFalse(Worker.isHandle(null))
        assert.isFalse(Worker.isHandle("Counter"))
        assert.isFalse(Worker.isHandle(Counter))
      }).pipe(Effect.provide(suiteCorps))
    )
  })

  describe("func", () => {
    it.effect("concurrency: 1 runs one call at a time", () => {
      const { state, gate, live } = probe({ concurrency: 1 })
      return Effect.gen(function* () {
        const handle = yield* Probe
        // Each fork runs at once until it suspends: inside the handler, or waiting for a permit.
        const fibers = yield* Effect.forEach(Array.from({ length: 5 }), () =>
          Effect.forkChild(handle.work(), { startImmediately: true })
        )
        assert.strictEqual(state.running, 1)
        yield* Deferred.succeed(gate, undefined)
        const maxima = yield* Effect.forEach(fibers, Fiber.join)
        assert.deepStrictEqual(maxima, [1, 1, 1, 1, 1])
        assert.strictEqual(state.max, 1)
        assert.strictEqual(state.completed, 5)
      }).pipe(Effect.provide(Corps.layer([live], { placement: {} })))
    })

    it.effect("concurrency: 2 lets two calls in at once", () => {
      const { state, gate, live } = probe({ concurrency: 2 })
      return Effect.gen(function* () {
        const handle = yield* Probe
        const fibers = yield* Effect.forEach(Array.from({ length: 5 }), () =>
          Effect.forkChild(handle.work(), { startImmediately: true })
        )
        assert.strictEqual(state.running, 2)
        yield* Deferred.succeed(gate, undefined)
        yield* Effect.forEach(fibers, Fiber.join)
        assert.strictEqual(state.max, 2)
        assert.strictEqual(state.completed, 5)
      }).pipe(Effect.provide(Corps.layer([live], { placement: {} })))
    })

    it.effect("by default calls run concurrently", () => {
      const { state, gate, live } = probe()
      return Effect.gen(function* () {
        const handle = yield* Probe
        const fibers = yield* Effect.forEach(Array.from({ length: 5 }), () =>
          Effect.forkChild(handle.work(), { startImmediately: true })
        )
        assert.strictEqual(state.running, 5)
        yield* Deferred.succeed(gate, undefined)
        yield* Effect.forEach(fibers, Fiber.join)
        assert.strictEqual(state.max, 5)
        assert.strictEqual(state.completed, 5)
      }).pipe(Effect.provide(Corps.layer([live], { placement: {} })))
    })

    it.effect(
      "an interrupted call gives its permit back",
      () => {
        const { state, gate, live } = probe({ concurrency: 1 })
        return Effect.gen(function* () {
          const handle = yield* Probe
          const first = yield* Effect.forkChild(handle.work(), { startImmediately: true })
          const second = yield* Effect.forkChild(handle.work(), { startImmediately: true })
          assert.strictEqual(state.running, 1)
          yield* Fiber.interrupt(first)
          yield* Deferred.succeed(gate, undefined)
          // A leaked permit would leave the second call waiting forever.
          assert.strictEqual(yield* Fiber.join(second), 1)
          assert.strictEqual(state.completed, 1)
          assert.strictEqual(yield* handle.work(), 1)
          assert.strictEqual(state.completed, 2)
        }).pipe(Effect.provide(Corps.layer([live], { placement: {} })))
      },
      5_000
    )
  })

  describe("conc", () => {
    it.effect("a builder that dies fails the call with InstanceStartFailed, and the next call builds again", () => {
      let builds = 0
      const live = Flaky.conc(
        Effect.suspend(() => {
          builds++
          return builds === 1
            ? Effect.die(new Error("first build"))
            : Effect.succeed({ ping: () => "pong", builds: () => builds })
        })
      )
      return Effect.gen(function* () {
        const flaky = yield* Flaky
        const error = yield* Effect.flip(flaky.ping())
        assert.strictEqual(error._tag, "InstanceStartFailed")
        assert.deepStrictEqual(
          error._tag === "InstanceStartFailed" ? [error.worker, error.key, error.reason, error.error] : [],
          ["Flaky", "default", "first build", undefined]
        )
        assert.include(error._tag === "InstanceStartFailed" ? error.stack : "", "first build")
        assert.strictEqual(builds, 1)
        assert.strictEqual(yield* flaky.ping(), "pong")
        assert.strictEqual(builds, 2)
        // Built once it succeeded: no further builds.
        assert.strictEqual(yield* flaky.builds(), 2)
        assert.strictEqual(yield* flaky.ping(), "pong")
        assert.strictEqual(builds, 2)
      }).pipe(Effect.provide(Corps.layer([live], { placement: {} })))
    })

    it.effect(
      "a builder that throws fails the call with InstanceStartFailed, and the instance is built on retry",
      () => {
        let builds = 0
        const live = Flaky.conc(
          Effect.sync(() => {
            builds++
            if (builds === 1) throw new Error("first build")
            return { ping: () => "pong", builds: () => builds }
          })
        )
        return Effect.gen(function* () {
          const flaky = yield* Flaky
          const error = yield* Effect.flip(flaky.ping())
          assert.strictEqual(error._tag, "InstanceStartFailed")
          assert.strictEqual(yield* flaky.ping(), "pong")
          assert.strictEqual(yield* flaky.builds(), 2)
        }).pipe(Effect.provide(Corps.layer([live], { placement: {} })))
      }
    )

    it.effect(
      "a call's Effect is a description: run by many fibers at once, each run is one call",
      () =>
        Effect.gen(function* () {
          const counter = yield* Counter
          // Built by the first call; seen returning an Effect by the second.
          yield* counter.increment({ by: 0 })
          yield* counter.increment({ by: 0 })
          const increment = counter.increment({ by: 1 })
          // A hang here is the failure: runs of one Effect lost each other in the mailbox.
          yield* Effect.all(
            Array.from({ length: 10 }, () => increment),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(yield* counter.get(), 10)
        }).pipe(Effect.provide(suiteCorps)),
      5_000
    )

    it.effect("a builder runs once per instance key, given the key", () => {
      const built: Array<string> = []
      const live = Flaky.conc((key) =>
        Effect.sync(() => {
          built.push(key)
          return { ping: () => `pong ${key}`, builds: () => built.length }
        })
      )
      return Effect.gen(function* () {
        const flaky = yield* Flaky
        assert.strictEqual(yield* flaky.instance("a").ping(), "pong a")
        assert.strictEqual(yield* flaky.instance("b").ping(), "pong b")
        assert.strictEqual(yield* flaky.instance("a").ping(), "pong a")
        assert.deepStrictEqual(built, ["a", "b"])
      }).pipe(Effect.provide(Corps.layer([live], { placement: {} })))
    })
  })
})

/**
 * The behavioural suite: what every Env kind must do, written once.
 * `behaviourSuite(name, placement)` runs it over one placement; a new Env kind
 * is tested by one more line calling it (see test/Env.local.test.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Schema, Stream } from "effect"
import { Corps, type Placement } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { Bank, Bounded, Counter, Gate, GateLive, ledgerVisible, members, Relay } from "../fixtures/workers.ts"

const fixtures = new URL("../fixtures/workers.ts", import.meta.url).href
const gateCorps = Corps.layer([GateLive], { placement: {} })

/**
 * Defines the behavioural tests for one placement. `providers` adds the Env
 * providers the placement needs beyond threads and processes (the cluster's, say).
 */
export const behaviourSuite = (
  name: string,
  placement: Placement.Placement,
  providers: Layer.Layer<never, unknown> = Layer.empty
): void => {
  /** The Corps under test, below an outer Corps holding the Gate (always in the test's runtime). */
  const corpsUnderTest = Corps.layer(members, { placement, module: fixtures }).pipe(
    Layer.provide(Layer.mergeAll(NodeEnv.layer, providers))
  )
  /** Runs `body` against a fresh Corps of the suite's Workers, closing it after. */
  const run = <A, E>(body: Effect.Effect<A, E, Corps.Provided<typeof members> | Gate>): Effect.Effect<A, E | unknown> =>
    Effect.scoped(Effect.provide(body, corpsUnderTest.pipe(Layer.provideMerge(gateCorps))))

  describe(`behaviour: ${name}`, () => {
    it.live("1,000 concurrent increments from 10 fibers end at exactly 1,000", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          yield* Effect.forEach(
            Array.from({ length: 10 }, (_, i) => i),
            () => Effect.repeat(counter.increment({ by: 1 }), { times: 99 }),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(yield* counter.get(), 1000)
        })
      )
    )

    it.live("synchronous handlers interleaved with Effect handlers stay exact", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          yield* Effect.forEach(
            Array.from({ length: 200 }, (_, i) => i),
            (i) => (i % 2 === 0 ? counter.increment({ by: 1 }) : counter.incrementSync({ by: 1 })),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(yield* counter.get(), 200)
        })
      )
    )

    it.live("calls from one caller are handled in the order sent", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          const items = Array.from({ length: 50 }, (_, i) => `item-${i}`)
          // Fire without waiting for each reply: order must still hold.
          const fibers = yield* Effect.forEach(items, (item) => Effect.forkChild(counter.append({ item })))
          const logs = yield* Effect.forEach(fibers, Fiber.join)
          assert.deepStrictEqual(logs.at(-1), items)
        })
      )
    )

    it.live("keyed instances are isolated", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          const a = counter.instance("a")
          const b = counter.instance("b")
          yield* a.increment({ by: 5 })
          yield* b.increment({ by: 7 })
          yield* a.increment({ by: 1 })
          assert.strictEqual(yield* a.get(), 6)
          assert.strictEqual(yield* b.get(), 7)
          assert.strictEqual(yield* counter.get(), 0)
          assert.strictEqual(a.key, "a")
          assert.strictEqual(yield* (yield* Counter.instance("a")).get(), 6)
        })
      )
    )

    it.live("a typed error reaches the caller with its tag and fields", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          yield* counter.increment({ by: 3 })
          const error = yield* Effect.flip(counter.withdraw({ amount: 10 }))
          assert.strictEqual(error._tag, "Overdrawn")
          assert.deepStrictEqual(error._tag === "Overdrawn" ? [error.balance, error.wanted] : [], [3, 10])
          assert.strictEqual(yield* counter.withdraw({ amount: 2 }), 1)
        })
      )
    )

    it.live("a defect becomes WorkerDefect and the Conc keeps serving", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          yield* counter.increment({ by: 1 })
          const thrown = yield* Effect.flip(counter.crash({ message: "boom" }))
          assert.strictEqual(thrown._tag, "WorkerDefect")
          assert.include(thrown.message, "boom")
          const died = yield* Effect.flip(counter.crashEffect({ message: "bang" }))
          assert.strictEqual(died._tag, "WorkerDefect")
          assert.include(died.message, "bang")
          // Not replayed, state intact, next call served.
          assert.strictEqual(yield* counter.increment({ by: 1 }), 2)
        })
      )
    )

    it.live("a timeout interrupts the handler, its finalizer runs, the Conc stays usable", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          const gate = yield* Gate
          const call = yield* Effect.forkChild(counter.block({ id: "t1" }))
          yield* gate.awaitStarted({ id: "t1" })
          yield* Fiber.interrupt(call)
          assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(call)))
          assert.strictEqual(yield* counter.finalized(), 1)
          const timedOut = yield* Effect.exit(Effect.timeout(counter.block({ id: "t2" }), "10 millis"))
          assert.isTrue(Exit.isFailure(timedOut))
          assert.strictEqual(yield* counter.finalized(), 2)
          assert.strictEqual(yield* counter.increment({ by: 1 }), 1)
        })
      )
    )

    it.live("a full mailbox fails callers with MailboxFull under the fail policy", () =>
      run(
        Effect.gen(function* () {
          const bounded = yield* Bounded
          const gate = yield* Gate
          const running = yield* Effect.forkChild(bounded.block({ id: "m1" }))
          yield* gate.awaitStarted({ id: "m1" })
          // Capacity 2: two calls wait, the third is refused.
          const waiting = yield* Effect.forEach([1, 2], () => Effect.forkChild(bounded.ping()))
          yield* Effect.yieldNow
          const refused = yield* Effect.flip(bounded.ping())
          assert.strictEqual(refused._tag, "CorpsMailboxFull")
          yield* gate.release({ id: "m1" })
          yield* Fiber.join(running)
          assert.deepStrictEqual(yield* Effect.forEach(waiting, Fiber.join), ["pong", "pong"])
          assert.strictEqual(yield* bounded.ping(), "pong")
        })
      )
    )

    it.live("the suspend policy makes callers wait, losing none", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          const gate = yield* Gate
          const running = yield* Effect.forkChild(counter.block({ id: "s1" }))
          yield* gate.awaitStarted({ id: "s1" })
          const waiting = yield* Effect.forkChild(
            Effect.forEach(
              Array.from({ length: 2000 }, (_, i) => i),
              () => counter.incrementSync({ by: 1 }),
              {
                concurrency: "unbounded"
              }
            )
          )
          yield* gate.release({ id: "s1" })
          yield* Fiber.join(running)
          yield* Fiber.join(waiting)
          assert.strictEqual(yield* counter.get(), 2000)
        })
      )
    )

    it.live("a handle passed to another Worker calls the original instance", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          const relay = yield* Relay
          const target = counter.instance("shared")
          assert.strictEqual(yield* relay.bump({ target, by: 4 }), 4)
          assert.strictEqual(yield* relay.bump({ target, by: 1 }), 5)
          assert.strictEqual(yield* target.get(), 5)
          const returned = yield* relay.counterFor({ key: "shared" })
          assert.strictEqual(yield* returned.get(), 5)
        })
      )
    )

    it.live("a nested Corps works and its private member is not reachable from outside", () =>
      run(
        Effect.gen(function* () {
          const bank = yield* Bank
          assert.strictEqual(yield* bank.deposit({ amount: 10 }), 10)
          assert.strictEqual(yield* bank.deposit({ amount: 5 }), 15)
          assert.isTrue(yield* bank.hasLedgerInContext())
          assert.isFalse(yield* ledgerVisible)
        })
      )
    )

    it.live("streaming methods stream", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          const values = yield* Stream.runCollect(counter.countdown({ from: 3 }))
          assert.deepStrictEqual([...values], [3, 2, 1])
        })
      )
    )

    it.live("closing the Corps runs every instance's cleanup, and later calls fail with CorpsClosed", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const gate = yield* Gate
          const leaked = yield* Effect.scoped(
            Effect.gen(function* () {
              const counter = yield* Counter
              yield* counter.instance("x").get()
              yield* counter.instance("y").get()
              return counter.instance("x")
            }).pipe(Effect.provide(corpsUnderTest))
          )
          assert.deepStrictEqual([...(yield* gate.closedKeys())].sort(), ["x", "y"])
          const error = yield* Effect.flip(leaked.get())
          assert.strictEqual(error._tag, "CorpsClosed")
        }).pipe(Effect.provide(gateCorps))
      )
    )

    it.live("an unencodable value is a SerializationError when values cross an Env", () =>
      run(
        Effect.gen(function* () {
          const counter = yield* Counter
          const bad = yield* Effect.exit(counter.stamp({ at: { epochMilliseconds: Number.NaN } as any }))
          if (crossesEnv(placement)) {
            assert.isTrue(Exit.isFailure(bad))
            const error = Exit.isFailure(bad) ? Cause.findErrorOption(bad.cause) : undefined
            assert.strictEqual(error?._tag === "Some" ? (error.value as any)._tag : undefined, "SerializationError")
          } else {
            // The FastPath does not encode: the handler sees the value as given.
            assert.isTrue(Exit.isSuccess(bad))
          }
          assert.strictEqual(
            yield* counter.stamp({ at: Schema.decodeSync(Schema.DateTimeUtcFromString)("2026-01-01T00:00:00Z") }),
            "stamped 1767225600000"
          )
        })
      )
    )
  })
}

/** Whether calls under `placement` are encoded (any Env but the plain FastPath). */
const crossesEnv = (placement: Placement.Placement): boolean => {
  const env = placement.workers?.Counter ?? placement.default ?? "local"
  const name = typeof env === "string" ? env : env.env
  const spec = placement.envs?.[name]
  return name !== "local" || (spec?.kind === "local" && spec.checkSerialization === true)
}

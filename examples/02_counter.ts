/**
 * 02 — Many callers, one Conc.
 *
 * A Counter Conc handles one call at a time per instance, in arrival order,
 * so many concurrent callers never lose an update — even though `increment`
 * reads the count, yields to other fibers, and only then writes it back.
 *
 * - 100 fibers send 100 increments each to the default instance;
 * - the same fibers send increments to one keyed instance per user
 *   (`counter.instance("alice")`, …), each with its own state;
 * - `withdraw` fails with the typed error `Overdrawn`, caught with
 *   `Effect.catchTag`.
 *
 * Prints the exact totals, the typed error, and the elapsed time (which
 * varies from run to run):
 *
 *   default instance: 10000 (expected 10000)
 *   alice: 1000 (expected 1000)
 *   bob: 2000 (expected 2000)
 *   carol: 3000 (expected 3000)
 *   alice withdraws 400: balance 600
 *   alice cannot withdraw 5000: balance 600
 *   default instance still at 10000 after the keyed calls
 *   13000 increments in <n> ms
 *
 * Run: npm run example:counter
 */
import { Duration, Effect, Schema } from "effect"
import { Corps, Worker } from "../src/index.ts"

/** A withdrawal larger than the balance: a typed error of the contract. */
class Overdrawn extends Schema.TaggedError<Overdrawn>()("Overdrawn", {
  balance: Schema.Number,
  wanted: Schema.Number
}) {}

/** A counter with a balance that may be withdrawn from. */
class Counter extends Worker.Service<Counter>()("Counter", {
  increment: { payload: { by: Schema.Number }, success: Schema.Number },
  withdraw: { payload: { amount: Schema.Number }, success: Schema.Number, error: Overdrawn },
  get: { success: Schema.Number }
}) {}

/** One instance per key, built on its first call; each closes over its own count. */
const CounterLive = Counter.conc(
  Effect.sync(() => {
    let count = 0
    return {
      // Read, yield, write: without one-call-at-a-time, concurrent increments would be lost.
      increment: ({ by }) =>
        Effect.gen(function* () {
          const before = count
          yield* Effect.yieldNow
          count = before + by
          return count
        }),
      withdraw: ({ amount }) =>
        Effect.suspend(() =>
          amount > count
            ? Effect.fail(new Overdrawn({ balance: count, wanted: amount }))
            : Effect.succeed((count -= amount))
        ),
      get: () => count
    }
  })
)

const fibers = 100
const perFiber = 100
const users = [
  { name: "alice", by: 1 },
  { name: "bob", by: 2 },
  { name: "carol", by: 3 }
] as const
const perUser = 1000

const program = Effect.gen(function* () {
  const counter = yield* Counter

  // 100 fibers × 100 increments on the default instance.
  const [onDefault] = yield* Effect.timed(
    Effect.forEach(
      Array.from({ length: fibers }, (_, i) => i),
      () => Effect.repeat(counter.increment({ by: 1 }), { times: perFiber - 1 }),
      { concurrency: "unbounded", discard: true }
    )
  )
  const total = yield* counter.get()
  console.log(`default instance: ${total} (expected ${fibers * perFiber})`)

  // The same 100 fibers share the increments of every user's own instance.
  const [onKeyed] = yield* Effect.timed(
    Effect.forEach(
      Array.from({ length: fibers }, (_, i) => i),
      () =>
        Effect.forEach(
          users,
          ({ name, by }) => Effect.repeat(counter.instance(name).increment({ by }), { times: perUser / fibers - 1 }),
          { discard: true }
        ),
      { concurrency: "unbounded", discard: true }
    )
  )
  for (const { name, by } of users) {
    console.log(`${name}: ${yield* counter.instance(name).get()} (expected ${by * perUser})`)
  }

  // A typed error is a value of the contract: catch it by its tag.
  const alice = counter.instance("alice")
  console.log(`alice withdraws 400: balance ${yield* alice.withdraw({ amount: 400 })}`)
  const refused = yield* alice.withdraw({ amount: 5000 }).pipe(
    Effect.map((balance) => `balance ${balance}`),
    Effect.catchTag("Overdrawn", (error) =>
      Effect.succeed(`alice cannot withdraw ${error.wanted}: balance ${error.balance}`)
    )
  )
  console.log(refused)

  console.log(`default instance still at ${yield* counter.get()} after the keyed calls`)

  const increments = fibers * perFiber + users.length * perUser
  const elapsed = Duration.toMillis(Duration.sum(onDefault, onKeyed))
  console.log(`${increments} increments in ${Math.round(elapsed)} ms`)
})

Effect.runPromise(program.pipe(Effect.provide(Corps.layer([CounterLive])))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})

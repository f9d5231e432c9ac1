/**
 * 01 — Hello, Corps.
 *
 * A Greeter Func and a Counter Conc, composed into one Corps and called from a
 * program. Prints a greeting for each name, then how many greetings were made:
 *
 *   Hello, Ada!
 *   Hello, Grace!
 *   Hello, Barbara!
 *   greetings made: 3
 *
 * Run: npm run example:hello
 */
import { Effect, Schema } from "effect"
import { Corps, Worker } from "../src/index.ts"

/** Counts things; one instance handles one call at a time. */
class Counter extends Worker.Service<Counter>()("Counter", {
  increment: { payload: { by: Schema.Number }, success: Schema.Number },
  get: { success: Schema.Number }
}) {}

/** Greets people, and counts the greetings with the Counter. */
class Greeter extends Worker.Service<Greeter>()("Greeter", {
  greet: { payload: { name: Schema.String }, success: Schema.String }
}) {}

const CounterLive = Counter.conc(
  Effect.sync(() => {
    let count = 0
    return {
      increment: ({ by }) => (count += by),
      get: () => count
    }
  })
)

const GreeterLive = Greeter.func(
  Effect.gen(function* () {
    const counter = yield* Counter
    return {
      greet: ({ name }) => Effect.as(counter.increment({ by: 1 }), `Hello, ${name}!`)
    }
  })
)

const program = Effect.gen(function* () {
  const greeter = yield* Greeter
  for (const name of ["Ada", "Grace", "Barbara"]) {
    console.log(yield* greeter.greet({ name }))
  }
  console.log(`greetings made: ${yield* Counter.get()}`)
})

Effect.runPromise(program.pipe(Effect.provide(Corps.layer([CounterLive, GreeterLive])))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})

/**
 * Program B: serves Squarer on B_PORT and records each square in program
 * A's Ledger (a call back into A, through its own Corps.connect).
 */
import { Effect, Layer, Stream } from "effect"
import { Corps } from "../../src/index.ts"
import { Ledger, Squarer, TooBig } from "./contracts.ts"

const secret = process.env.CORPS_SECRET ?? "example-secret"

const SquarerLive = Squarer.func(
  Effect.gen(function* () {
    const ledger = yield* Ledger
    return {
      square: ({ n }) =>
        n > 1000 ? Effect.fail(new TooBig({ n })) : Effect.as(ledger.record({ line: `B squared ${n}` }), n * n),
      squares: ({ upTo }) => Stream.fromIterable(Array.from({ length: upTo }, (_, i) => (i + 1) ** 2))
    }
  })
)

const B = Corps.serve([Squarer], { listen: `127.0.0.1:${process.env.B_PORT}`, secret }).pipe(
  Layer.provide(Corps.layer([SquarerLive])),
  // A may start after B: connect waits for it (up to connectTimeoutMillis).
  Layer.provide(Corps.connect([Ledger], { address: `127.0.0.1:${process.env.A_PORT}`, secret }))
)

Effect.runFork(
  Effect.andThen(Corps.ServedAt, ({ address }) => Effect.log(`program B serves Squarer on ${address}`)).pipe(
    Effect.andThen(Effect.never),
    Effect.provide(B)
  )
)

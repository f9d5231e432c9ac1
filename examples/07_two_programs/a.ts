/**
 * Program A: serves Ledger on A_PORT, connects to program B's Squarer, calls
 * it (B's handler calls back into A's Ledger), reads a stream, meets a
 * typed error, prints the ledger and exits.
 */
import { Effect, Layer, Ref, Stream } from "effect"
import { Corps } from "../../src/index.ts"
import { Ledger, Squarer } from "./contracts.ts"

const secret = process.env.CORPS_SECRET ?? "example-secret"

const main = Effect.gen(function* () {
  const lines = yield* Ref.make<ReadonlyArray<string>>([])
  const LedgerLive = Ledger.func({
    record: ({ line }) => Ref.modify(lines, (all) => [all.length + 1, [...all, line]])
  })
  const A = Corps.serve([Ledger], { listen: `127.0.0.1:${process.env.A_PORT}`, secret }).pipe(
    Layer.provide(Corps.layer([LedgerLive]))
  )
  // Serve first, then connect: B's own connect to A is waiting for this side.
  yield* Layer.build(A)
  yield* Effect.gen(function* () {
    const squarer = yield* Squarer
    yield* Effect.log(`7² = ${yield* squarer.square({ n: 7 })}`)
    yield* Effect.log(`12² = ${yield* squarer.square({ n: 12 })}`)
    const tooBig = yield* Effect.flip(squarer.square({ n: 5000 }))
    yield* Effect.log(`5000² failed with ${tooBig._tag} (n=${tooBig._tag === "TooBig" ? tooBig.n : "?"})`)
    const all = yield* Stream.runCollect(squarer.squares({ upTo: 5 }))
    yield* Effect.log(`squares streamed from B: ${Array.from(all).join(", ")}`)
    yield* Effect.log(`A's ledger, written by B: ${JSON.stringify(yield* Ref.get(lines))}`)
  }).pipe(Effect.provide(Corps.connect([Squarer], { address: `127.0.0.1:${process.env.B_PORT}`, secret })))
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)

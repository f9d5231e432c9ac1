/**
 * Micro: one Conc method in an Effect.gen loop (for --cpu-prof), Effect or
 * sync handler. `npx node bench/micro/conc-call.ts [bump|bumpSync|inc] [ops]`
 */
import { Effect, Schema } from "effect"
import { Corps, Worker } from "../../src/index.ts"

class Tally extends Worker.Service<Tally>()("Tally", {
  bump: { success: Schema.Number },
  bumpSync: { success: Schema.Number }
}) {}
class Adder extends Worker.Service<Adder>()("Adder", {
  inc: { payload: { n: Schema.Number }, success: Schema.Number }
}) {}

const TallyLive = Tally.conc(
  Effect.sync(() => {
    let count = 0
    return { bump: () => Effect.sync(() => ++count), bumpSync: () => ++count }
  })
)
const AdderLive = Adder.func({ inc: ({ n }) => Effect.succeed(n + 1) })

const which = process.argv[2] ?? "bump"
const ops = Number(process.argv[3] ?? 2_000_000)
await Effect.runPromise(
  Effect.gen(function* () {
    const tally = yield* Tally
    const adder = yield* Adder
    const call =
      which === "bump" ? () => tally.bump() : which === "bumpSync" ? () => tally.bumpSync() : () => adder.inc({ n: 1 })
    for (let r = 0; r < 5; r++) {
      const t = performance.now()
      for (let i = 0; i < ops; i++) yield* call() as Effect.Effect<number, unknown>
      console.log(which, (((performance.now() - t) * 1e6) / ops).toFixed(1), "ns/call")
    }
  }).pipe(Effect.provide(Corps.layer([TallyLive, AdderLive])))
)

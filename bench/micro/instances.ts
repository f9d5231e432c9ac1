/**
 * Micro: first call on N new Conc keys (creation + build), for --cpu-prof.
 * `npx node bench/micro/instances.ts [n]`
 */
import { Effect, Schema } from "effect"
import { Corps, Worker } from "../../src/index.ts"

class Tally extends Worker.Service<Tally>()("Tally", { get: { success: Schema.Number } }) {}
const TallyLive = Tally.conc(
  Effect.sync(() => {
    let count = 0
    return { get: () => count, bump: () => Effect.sync(() => ++count) }
  })
)
const n = Number(process.argv[2] ?? 100_000)
for (let round = 0; round < 3; round++) {
  const keys = Array.from({ length: n }, (_, i) => `k${round}-${i}`)
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const tally = yield* Tally
        const start = performance.now()
        for (const key of keys) yield* tally.instance(key).get()
        const ms = performance.now() - start
        console.log(`${n} instances: ${ms.toFixed(0)} ms, ${((ms * 1e6) / n).toFixed(0)} ns each`)
      }).pipe(Effect.provide(Corps.layer([TallyLive])))
    )
  )
}

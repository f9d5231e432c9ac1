// The same program in plain JavaScript (an .mjs file, no TypeScript at all).
import { threadId } from "node:worker_threads"
import { Effect, Layer, Schema } from "effect"
import { Corps, Worker } from "effect-corps"
import { NodeEnv } from "effect-corps/node"

const Place = Schema.Struct({ pid: Schema.Number, thread: Schema.Number })

export class Tally extends Worker.Service()("Tally", {
  add: { payload: { n: Schema.Number }, success: Schema.Number },
  where: { success: Place }
}) {}

export class Ledger extends Worker.Service()("Ledger", {
  add: { payload: { n: Schema.Number }, success: Schema.Number },
  where: { success: Place }
}) {}

const counter = Effect.sync(() => {
  let total = 0
  return {
    add: ({ n }) => (total += n),
    where: () => ({ pid: process.pid, thread: threadId })
  }
})

export const TallyLive = Tally.conc(counter)
export const LedgerLive = Ledger.conc(counter)

if (import.meta.main) {
  const App = Corps.layer([TallyLive, LedgerLive], {
    module: import.meta.url,
    placement: { workers: { Tally: "thread", Ledger: "process" } }
  }).pipe(Layer.provide(NodeEnv.layer))

  const program = Effect.gen(function* () {
    const tally = yield* Tally
    const ledger = yield* Ledger
    for (const n of [1, 2, 3]) yield* tally.add({ n })
    for (const n of [10, 20]) yield* ledger.add({ n })
    const inThread = yield* tally.where()
    const inProcess = yield* ledger.where()
    console.log(
      `mjs thread: total=${yield* tally.add({ n: 0 })} ${inThread.pid === process.pid && inThread.thread !== threadId ? "in another thread" : "NOT in a thread"}`
    )
    console.log(
      `mjs process: total=${yield* ledger.add({ n: 0 })} ${inProcess.pid !== process.pid ? "in another process" : "NOT in a process"}`
    )
  })
  // A promise handled without a top-level await (the .ts program uses one).
  Effect.runPromise(program.pipe(Effect.provide(App))).catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}

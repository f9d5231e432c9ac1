/**
 * The FastPath against plain Effect: a Func call and a Conc call on the
 * `local` placement, side by side with the same method on a plain Effect
 * service provided by a Layer; and the cost of 100,000 idle Conc instances.
 *
 * Run alone with `npx node --expose-gc bench/fastpath.bench.ts`.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { Corps, Worker } from "../src/index.ts"
import { throughputSideBySide } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const OPS = 200_000
const INSTANCES = 100_000

class Direct extends Context.Service<
  Direct,
  {
    readonly inc: (payload: { readonly n: number }) => Effect.Effect<number>
    readonly bump: () => Effect.Effect<number>
  }
>()("bench/Direct") {}

const DirectLive = Layer.sync(Direct, () => {
  let count = 0
  return {
    inc: ({ n }) => Effect.succeed(n + 1),
    bump: () => Effect.sync(() => ++count)
  }
})

class Adder extends Worker.Service<Adder>()("Adder", {
  inc: { payload: { n: Schema.Number }, success: Schema.Number },
  incSync: { payload: { n: Schema.Number }, success: Schema.Number }
}) {}

class Tally extends Worker.Service<Tally>()("Tally", {
  bump: { success: Schema.Number },
  bumpSync: { success: Schema.Number },
  get: { success: Schema.Number }
}) {}

const AdderLive = Adder.func({ inc: ({ n }) => Effect.succeed(n + 1), incSync: ({ n }) => n + 1 })

const TallyLive = Tally.conc(
  Effect.sync(() => {
    let count = 0
    return {
      bump: () => Effect.sync(() => ++count),
      bumpSync: () => ++count,
      get: () => count
    }
  })
)

/** Runs `ops` sequential calls of `call` inside one Effect.gen loop, as a user program would. */
const loop =
  <R>(call: (i: number) => Effect.Effect<number, unknown, R>) =>
  (ops: number) =>
    Effect.gen(function* () {
      let last = 0
      for (let i = 0; i < ops; i++) last = yield* call(i)
      return last
    })

/** Measures FastPath calls against direct service calls; records figures and ratios. */
export const runFastPath = async (): Promise<void> => {
  section(`FastPath: ${OPS.toLocaleString("en-US")} sequential calls per round (calls/s, median of interleaved rounds)`)
  const program = Effect.gen(function* () {
    const direct = yield* Direct
    const adder = yield* Adder
    const tally = yield* Tally
    const rounds = {
      direct: loop((n) => direct.inc({ n })),
      func: loop((n) => adder.inc({ n }) as Effect.Effect<number, unknown>),
      funcSync: loop((n) => adder.incSync({ n }) as Effect.Effect<number, unknown>),
      directBump: loop(() => direct.bump()),
      concEffect: loop(() => tally.bump() as Effect.Effect<number, unknown>),
      concSync: loop(() => tally.bumpSync() as Effect.Effect<number, unknown>)
    }
    const runtime = yield* Effect.context<never>()
    const run = (make: (ops: number) => Effect.Effect<number, unknown>) => (ops: number) =>
      Effect.runPromise(Effect.provideContext(make(ops), runtime)).then(() => undefined)
    return yield* Effect.promise(() =>
      throughputSideBySide(Object.fromEntries(Object.entries(rounds).map(([k, make]) => [k, run(make)])), {
        ops: OPS,
        rounds: 7,
        warmup: 2
      })
    )
  })
  const rates = await Effect.runPromise(
    program.pipe(Effect.provide(Layer.merge(DirectLive, Corps.layer([AdderLive, TallyLive]))))
  )
  figure("fastpath.direct.callsPerSec", rates.direct!, "calls/s")
  figure("fastpath.func.callsPerSec", rates.func!, "calls/s")
  figure("fastpath.funcSync.callsPerSec", rates.funcSync!, "calls/s")
  figure("fastpath.directStateful.callsPerSec", rates.directBump!, "calls/s")
  figure("fastpath.concEffect.callsPerSec", rates.concEffect!, "calls/s")
  figure("fastpath.concSync.callsPerSec", rates.concSync!, "calls/s")
  // Cost ratios: how many times the direct call's time one of ours takes (lower is better).
  ratio("fastpath.func.costVsDirect", rates.direct!, rates.func!, "≤ 1.5")
  ratio("fastpath.funcSync.costVsDirect", rates.direct!, rates.funcSync!)
  ratio("fastpath.concEffect.costVsDirect", rates.directBump!, rates.concEffect!, "≤ 3")
  ratio("fastpath.concSync.costVsDirect", rates.directBump!, rates.concSync!, "≤ 1.5")

  await runInstances()
}

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new Error("run with --expose-gc (npm run bench does)")
  collect()
  collect()
}

/** 100,000 idle Conc instances: bytes each (runtime beside the user's state) and creation time. */
const runInstances = async (): Promise<void> => {
  section(`Conc instances: ${INSTANCES.toLocaleString("en-US")} idle, each called once`)
  const makeState = () => {
    let count = 0
    return {
      bump: () => Effect.sync(() => ++count),
      bumpSync: () => ++count,
      get: () => count
    }
  }
  // The user's own state, built the same way without effect-corps, to subtract it.
  gc()
  const before = process.memoryUsage().heapUsed
  const userStates: Array<unknown> = []
  for (let i = 0; i < INSTANCES; i++) userStates.push(makeState())
  gc()
  const userBytes = (process.memoryUsage().heapUsed - before) / INSTANCES
  userStates.length = 0

  const keys = Array.from({ length: INSTANCES }, (_, i) => `k${i}`)
  const Many = Tally.conc(Effect.sync(makeState))
  // Warm-up in a Corps of its own (JIT), as in a long-running service; then the measured one.
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const tally = yield* Tally
        for (const key of keys.slice(0, INSTANCES / 2)) yield* tally.instance(key).get()
      }).pipe(Effect.provide(Corps.layer([Many])))
    )
  )
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const tally = yield* Tally
        gc()
        const heapBefore = process.memoryUsage().heapUsed
        const start = performance.now()
        for (const key of keys) yield* tally.instance(key).get()
        const seconds = (performance.now() - start) / 1000
        gc()
        const totalBytes = (process.memoryUsage().heapUsed - heapBefore) / INSTANCES
        figure("instances.userStateBytesEach", userBytes, "B")
        figure("instances.totalBytesEach", totalBytes, "B")
        figure("instances.runtimeBytesEach", totalBytes - userBytes, "B  (target ≤ 128)")
        figure("instances.createSeconds", seconds, "s  (target ≤ 0.3)")
      }).pipe(Effect.provide(Corps.layer([Many])))
    )
  )
}

if (import.meta.main) {
  setTimeout(() => process.exit(2), 120_000).unref()
  await runFastPath()
  printJson()
}

/**
 * What monitoring costs, on vs off in one run: thread-Env throughput with
 * metrics (goal: on ≥ 0.95 × off) and with tracing at sample rate 1.0
 * (goal ≥ 0.75 ×), and the FastPath Func with metrics (goal ≥ 0.9 ×).
 * "Off" is today's code path — no Monitoring.layer — and is compared with
 * the same figures of bench/fastpath.bench.ts and bench/baselines.bench.ts
 * when they ran earlier in the same run.
 *
 * Tracing here uses effect's native Tracer (spans made, sampled and ended,
 * not exported): the cost of a collector is the collector's.
 *
 * Run alone with `npx node --expose-gc bench/monitoring.bench.ts`.
 */
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Corps, Monitoring, Worker } from "../src/index.ts"
import type { BaselinePool } from "./baselines/pool.ts"
import { corpsPool } from "./corps/pools.ts"
import { throughputSideBySide } from "./lib/measure.ts"
import { allFigures, figure, printJson, ratio, section } from "./lib/report.ts"

const THREAD_OPS = 30_000
const FAST_OPS = 200_000
const ROUNDS = 7

class Adder extends Worker.Service<Adder>()("MonitoredAdder", {
  inc: { payload: { n: Schema.Number }, success: Schema.Number }
}) {}

const AdderLive = Adder.func({ inc: ({ n }) => Effect.succeed(n + 1) })

/** A FastPath round: `ops` sequential calls in one Effect.gen loop, in a Corps built below `monitoring`. */
const fastPathRound = async (monitoring: Layer.Layer<never, unknown> | undefined) => {
  const corps = Corps.layer([AdderLive])
  const runtime = ManagedRuntime.make(monitoring === undefined ? corps : corps.pipe(Layer.provide(monitoring)))
  const adder = await runtime.runPromise(Effect.service(Adder))
  const round = (ops: number) =>
    runtime
      .runPromise(
        Effect.gen(function* () {
          let last = 0
          for (let i = 0; i < ops; i++) last = (yield* adder.inc({ n: i })) as number
          return last
        })
      )
      .then(() => undefined)
  return { round, close: () => runtime.dispose() }
}

/** Measures monitoring on vs off; records figures and ratios. */
export const runMonitoring = async (): Promise<void> => {
  const earlier = { ...allFigures() }

  section(`monitoring: thread Env, 2 threads, 64 in flight (ops/s, median of ${ROUNDS} interleaved rounds)`)
  const pools: Array<BaselinePool> = []
  try {
    const off = await corpsPool("thread")
    pools.push(off)
    const metrics = await corpsPool("thread", Monitoring.layer({ metrics: true }))
    pools.push(metrics)
    const tracing = await corpsPool("thread", Monitoring.layer({ metrics: false, tracing: { sampleRate: 1 } }))
    pools.push(tracing)
    const rates = await throughputSideBySide(
      { off: off.run, metrics: metrics.run, tracing: tracing.run },
      { ops: THREAD_OPS, rounds: ROUNDS, warmup: 1 }
    )
    figure("monitoring.thread.off.opsPerSec", rates.off!, "ops/s")
    figure("monitoring.thread.metrics.opsPerSec", rates.metrics!, "ops/s")
    figure("monitoring.thread.tracing.opsPerSec", rates.tracing!, "ops/s")
    ratio("monitoring_thread_metrics_ratio", rates.metrics!, rates.off!, "≥ 0.95")
    ratio("monitoring_thread_tracing_ratio", rates.tracing!, rates.off!, "≥ 0.75")
    const baseline = earlier["threads.corps.opsPerSec"]
    if (baseline !== undefined) ratio("monitoring.thread.offVsBaselines", rates.off!, baseline, "≈ 1")
  } finally {
    await Promise.all(pools.map((pool) => pool.close()))
  }

  section(`monitoring: FastPath Func, ${FAST_OPS.toLocaleString("en-US")} sequential calls (calls/s, median)`)
  const off = await fastPathRound(undefined)
  const metrics = await fastPathRound(Monitoring.layer({ metrics: true }))
  const fast = await throughputSideBySide(
    { off: off.round, metrics: metrics.round },
    { ops: FAST_OPS, rounds: ROUNDS, warmup: 2 }
  ).finally(() => Promise.all([off.close(), metrics.close()]))
  figure("monitoring.fastpath.off.callsPerSec", fast.off!, "calls/s")
  figure("monitoring.fastpath.metrics.callsPerSec", fast.metrics!, "calls/s")
  ratio("monitoring_fastpath_metrics_ratio", fast.metrics!, fast.off!, "≥ 0.9")
  const baseline = earlier["fastpath.func.callsPerSec"]
  if (baseline !== undefined) ratio("monitoring.fastpath.offVsFastPath", fast.off!, baseline, "≈ 1")
}

if (import.meta.main) {
  await runMonitoring()
  printJson()
  process.exit(0)
}

/**
 * What monitoring costs, on vs off in one run: thread-Env throughput with
 * metrics (goal: on ≥ 0.95 × off) and with tracing at sample rate 1.0
 * (goal ≥ 0.75 ×), and the FastPath Func with metrics (goal ≥ 0.9 ×).
 * "Off" is today's code path — no Monitoring.layer — and is compared with
 * the same figures of bench/fastpath.bench.ts and bench/baselines.bench.ts
 * when they ran earlier in the same run.
 *
 * A second unmonitored pool (`control`) runs interleaved with the others:
 * `monitoring.thread.controlRatio` is control ÷ off, the spread two identical
 * pools show in the same run, against which the monitored ratios are read.
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
import { median } from "./lib/measure.ts"
import { allFigures, figure, printJson, ratio, section } from "./lib/report.ts"

const THREAD_OPS = 30_000
const FAST_OPS = 200_000
const ROUNDS = 7

class Adder extends Worker.Service<Adder>()("MonitoredAdder", {
  inc: { payload: { n: Schema.Number }, success: Schema.Number }
}) {}

const AdderLive = Adder.func({ inc: ({ n }) => Effect.succeed(n + 1) })

/**
 * Interleaved rounds, as `throughputSideBySide`, also recording the CPU time
 * the whole process (its Env threads included) spent per call: on a machine
 * shared with other work, CPU per call moves far less than wall-clock
 * throughput, so both are reported.
 */
const sideBySide = async (
  rounds: Record<string, (ops: number) => Promise<void>>,
  options: { readonly ops: number; readonly rounds: number; readonly warmup: number }
): Promise<Record<string, { readonly rate: number; readonly cpuNsPerCall: number }>> => {
  const names = Object.keys(rounds)
  const rates: Record<string, Array<number>> = Object.fromEntries(names.map((n) => [n, []]))
  const cpus: Record<string, Array<number>> = Object.fromEntries(names.map((n) => [n, []]))
  for (let i = 0; i < options.warmup; i++) for (const n of names) await rounds[n]!(options.ops)
  for (let i = 0; i < options.rounds; i++) {
    for (const n of names) {
      const cpu = process.cpuUsage()
      const start = performance.now()
      await rounds[n]!(options.ops)
      const elapsed = performance.now() - start
      const used = process.cpuUsage(cpu)
      rates[n]!.push(options.ops / (elapsed / 1000))
      cpus[n]!.push(((used.user + used.system) * 1000) / options.ops)
    }
  }
  return Object.fromEntries(names.map((n) => [n, { rate: median(rates[n]!), cpuNsPerCall: median(cpus[n]!) }]))
}

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
    // A second unmonitored pool, interleaved like the others: how far two identical pools differ in
    // this run (on a shared 2-core machine, as much as 30%). A monitored ratio within that spread is noise.
    const control = await corpsPool("thread")
    pools.push(control)
    const metrics = await corpsPool("thread", Monitoring.layer({ metrics: true }))
    pools.push(metrics)
    const tracing = await corpsPool("thread", Monitoring.layer({ metrics: false, tracing: { sampleRate: 1 } }))
    pools.push(tracing)
    const rates = await sideBySide(
      { off: off.run, metrics: metrics.run, tracing: tracing.run, control: control.run },
      { ops: THREAD_OPS, rounds: ROUNDS, warmup: 1 }
    )
    figure("monitoring.thread.off.opsPerSec", rates.off!.rate, "ops/s")
    figure("monitoring.thread.metrics.opsPerSec", rates.metrics!.rate, "ops/s")
    figure("monitoring.thread.tracing.opsPerSec", rates.tracing!.rate, "ops/s")
    figure("monitoring.thread.off.cpuNsPerCall", rates.off!.cpuNsPerCall, "ns CPU per call (all threads)")
    figure("monitoring.thread.metrics.cpuNsPerCall", rates.metrics!.cpuNsPerCall, "ns CPU per call (all threads)")
    figure("monitoring.thread.tracing.cpuNsPerCall", rates.tracing!.cpuNsPerCall, "ns CPU per call (all threads)")
    figure("monitoring.thread.control.opsPerSec", rates.control!.rate, "ops/s")
    ratio("monitoring.thread.controlRatio", rates.control!.rate, rates.off!.rate, "≈ 1 (noise floor)")
    ratio("monitoring_thread_metrics_ratio", rates.metrics!.rate, rates.off!.rate, "≥ 0.95")
    ratio("monitoring_thread_tracing_ratio", rates.tracing!.rate, rates.off!.rate, "≥ 0.75")
    // The same comparison in CPU spent per call (off ÷ on, so that it reads like the throughput ratio).
    ratio("monitoring.thread.metrics.cpuRatio", rates.off!.cpuNsPerCall, rates.metrics!.cpuNsPerCall, "≥ 0.95")
    ratio("monitoring.thread.tracing.cpuRatio", rates.off!.cpuNsPerCall, rates.tracing!.cpuNsPerCall, "≥ 0.75")
    const baseline = earlier["threads.corps.opsPerSec"]
    if (baseline !== undefined) ratio("monitoring.thread.offVsBaselines", rates.off!.rate, baseline, "≈ 1")
  } finally {
    await Promise.all(pools.map((pool) => pool.close()))
  }

  section(`monitoring: FastPath Func, ${FAST_OPS.toLocaleString("en-US")} sequential calls (calls/s, median)`)
  const off = await fastPathRound(undefined)
  const metrics = await fastPathRound(Monitoring.layer({ metrics: true }))
  const fast = await sideBySide(
    { off: off.round, metrics: metrics.round },
    { ops: FAST_OPS, rounds: ROUNDS, warmup: 2 }
  ).finally(() => Promise.all([off.close(), metrics.close()]))
  figure("monitoring.fastpath.off.callsPerSec", fast.off!.rate, "calls/s")
  figure("monitoring.fastpath.metrics.callsPerSec", fast.metrics!.rate, "calls/s")
  ratio("monitoring_fastpath_metrics_ratio", fast.metrics!.rate, fast.off!.rate, "≥ 0.9")
  ratio("monitoring.fastpath.metrics.cpuRatio", fast.off!.cpuNsPerCall, fast.metrics!.cpuNsPerCall, "≥ 0.9")
  const baseline = earlier["fastpath.func.callsPerSec"]
  if (baseline !== undefined) ratio("monitoring.fastpath.offVsFastPath", fast.off!.rate, baseline, "≈ 1")
}

if (import.meta.main) {
  await runMonitoring()
  printJson()
  process.exit(0)
}

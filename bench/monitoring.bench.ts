/**
 * What monitoring costs, on vs off in one run: thread-Env throughput with
 * metrics (goal: on ≥ 0.95 × off) and with tracing at sample rate 1.0
 * (goal ≥ 0.75 ×), and the FastPath Func with metrics (goal ≥ 0.9 ×).
 * "Off" is today's code path — no Monitoring.layer — and is compared with
 * the same figures of bench/fastpath.bench.ts and bench/baselines.bench.ts
 * when they ran earlier in the same run.
 *
 * Each mode runs in a child process of its own, as a program runs one
 * monitoring set-up: measured in one process, the call sites the modes share
 * see every kind of call object and are slower for all of them than in any
 * real program. The children (five per set-up: one process can run 30% or
 * more off the others for its whole life) are driven round by round
 * from here, each round in every child in turn (the order rotating), so that
 * the machine's noise hits all alike; a ratio is the median of the rounds'
 * ratios.
 *
 * A second unmonitored pool (`control`) runs like the others:
 * `monitoring.thread.controlRatio` is control ÷ off, the spread two identical
 * pools show in the same run, against which the monitored ratios are read.
 *
 * Tracing here uses effect's native Tracer (spans made, sampled and ended,
 * not exported): the cost of a collector is the collector's. `tracing` is the
 * set-up with one span per call, where it runs (the default with `otlp`);
 * `tracingClientSpans` adds the caller's client span (the default without).
 *
 * Run alone with `npx node --expose-gc bench/monitoring.bench.ts`.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Corps, Monitoring, Worker } from "../src/index.ts"
import { corpsPool } from "./corps/pools.ts"
import { median } from "./lib/measure.ts"
import { allFigures, figure, printJson, ratio, section } from "./lib/report.ts"
import { callerSide } from "./monitoring/callerSide.ts"

const THREAD_OPS = 40_000
const FAST_OPS = 200_000
const ROUNDS = 7
/** Child processes per set-up. */
const REPLICAS = 5

class Adder extends Worker.Service<Adder>()("MonitoredAdder", {
  inc: { payload: { n: Schema.Number }, success: Schema.Number }
}) {}

const AdderLive = Adder.func({ inc: ({ n }) => Effect.succeed(n + 1) })

/** The monitoring set-ups measured, by name. */
const setups: Record<string, () => Layer.Layer<never, unknown> | undefined> = {
  off: () => undefined,
  control: () => undefined,
  metrics: () => Monitoring.layer({ metrics: true }),
  tracing: () => Monitoring.layer({ metrics: false, tracing: { sampleRate: 1, clientSpans: false } }),
  tracingClientSpans: () => Monitoring.layer({ metrics: false, tracing: { sampleRate: 1, clientSpans: true } })
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

/** What a child answers for one round: wall-clock ms and the CPU µs its whole process (Env threads included) spent. */
interface RoundResult {
  readonly millis: number
  readonly cpuMicros: number
}

/** A child process running one set-up's pool (`kind` thread or fastpath), driven round by round. */
interface Child {
  readonly round: (ops: number) => Promise<RoundResult>
  readonly close: () => void
}

const self = fileURLToPath(import.meta.url)

/**
 * Whether `taskset` can pin a process to a CPU here. On the 2-vCPU machines
 * this runs on, one vCPU ran a single-threaded loop at half the speed of the
 * other for minutes at a time (docs/performance.md): a FastPath child is
 * pinned to CPU 0, every set-up alike, so that they are compared on one CPU.
 */
const canPin = spawnSync("taskset", ["-p", String(process.pid)]).status === 0

/**
 * What a child runs: the thread pool on both CPUs, the same pool with its
 * process (caller and Env threads) pinned to CPU 0, or the FastPath loop
 * (pinned to CPU 0). On one CPU a pool's throughput is the inverse of the
 * CPU all its threads spend per call, so monitoring's whole cost shows and
 * the other vCPU's noise does not.
 */
type Kind = "thread" | "threadOneCpu" | "fastpath" | "caller"

const startChild = (kind: Kind, setup: string): Promise<Child> =>
  new Promise((resolve, reject) => {
    const args = [...process.execArgv, self, "--child", kind, setup]
    const stdio: Array<"inherit" | "ipc"> = ["inherit", "inherit", "inherit", "ipc"]
    const child: ChildProcess =
      (kind === "fastpath" || kind === "threadOneCpu" || kind === "caller") && canPin
        ? spawn("taskset", ["-c", "0", process.execPath, ...args], { stdio })
        : spawn(process.execPath, args, { stdio })
    let waiting: ((result: RoundResult) => void) | undefined
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`${setup} (${kind}) exited with ${code}`)))
    child.on("message", (message: "ready" | RoundResult) => {
      if (message === "ready") {
        resolve({
          round: (ops) =>
            new Promise((answer) => {
              waiting = answer
              child.send(ops)
            }),
          close: () => {
            child.removeAllListeners("exit")
            child.kill()
          }
        })
      } else waiting?.(message)
    })
  })

/** The child's side: builds its pool, then runs a round for each number of ops it is sent. */
const serveChild = async (kind: Kind, setup: string) => {
  const monitoring = setups[setup]!()
  const run: (ops: number) => Promise<void> =
    kind === "caller"
      ? callerSide(setup)
      : kind === "fastpath"
        ? (await fastPathRound(monitoring)).round
        : (await corpsPool("thread", monitoring)).run
  process.on("message", async (ops: number) => {
    const cpu = process.cpuUsage()
    const start = performance.now()
    await run(ops)
    const millis = performance.now() - start
    const used = process.cpuUsage(cpu)
    process.send!({ millis, cpuMicros: used.user + used.system } satisfies RoundResult)
  })
  process.send!("ready")
}

/**
 * Runs {@link REPLICAS} children of each of `names` round by round (warm-up
 * rounds first), rotating the order each round. Per set-up: the median rate
 * and CPU ns per call, and against `base` the median over rounds of the
 * ratio of the set-up's median over its replicas in that round to the
 * base's: a process that runs slow for its whole life (it happens here, see
 * the header) moves neither median. `unmonitored` set-ups are twins of
 * `base`: a monitored set-up is compared with all of their replicas (ten
 * processes rather than five), a twin with `base` alone (the noise floor).
 */
const sideBySide = async (
  kind: Kind,
  names: ReadonlyArray<string>,
  base: string,
  options: { readonly ops: number; readonly rounds: number; readonly warmup: number },
  unmonitored: ReadonlyArray<string> = []
) => {
  const children: Array<{ readonly name: string; readonly replica: number; readonly child: Child }> = []
  try {
    for (let replica = 0; replica < REPLICAS; replica++)
      for (const name of names) children.push({ name, replica, child: await startChild(kind, name) })
    // results[name][replica][round]
    const results: Record<string, Array<Array<RoundResult>>> = Object.fromEntries(
      names.map((n) => [n, Array.from({ length: REPLICAS }, () => [])])
    )
    for (let i = 0; i < options.warmup + options.rounds; i++) {
      for (let j = 0; j < children.length; j++) {
        const { child, name, replica } = children[(i + j) % children.length]!
        const result = await child.round(options.ops)
        if (i >= options.warmup) results[name]![replica]!.push(result)
      }
    }
    const rate = (r: RoundResult) => options.ops / (r.millis / 1000)
    const cpuNs = (r: RoundResult) => (r.cpuMicros * 1000) / options.ops
    // Per round, the median over a set-up's replicas against the median over the base's.
    const inRound = (names: ReadonlyArray<string>, i: number, f: (r: RoundResult) => number) =>
      median(names.flatMap((name) => results[name]!.map((rounds) => f(rounds[i]!))))
    const paired = (name: string, f: (r: RoundResult) => number, invert: boolean) =>
      median(
        Array.from({ length: options.rounds }, (_, i) => {
          const value = inRound([name], i, f)
          // An unmonitored set-up against its twin alone; the others against every unmonitored replica.
          const baseline = inRound(name === base || unmonitored.includes(name) ? [base] : [base, ...unmonitored], i, f)
          return invert ? baseline / value : value / baseline
        })
      )
    return Object.fromEntries(
      names.map((name) => {
        const all = results[name]!.flat()
        return [
          name,
          {
            rate: median(all.map(rate)),
            cpuNsPerCall: median(all.map(cpuNs)),
            rateRatio: paired(name, rate, false),
            // Off ÷ on for CPU, so that it reads like the throughput ratio.
            cpuRatio: paired(name, cpuNs, true)
          }
        ]
      })
    )
  } finally {
    for (const { child } of children) child.close()
  }
}

/** Measures monitoring on vs off; records figures and ratios. */
export const runMonitoring = async (): Promise<void> => {
  const earlier = { ...allFigures() }

  section(
    `monitoring: thread Env, 2 threads, 64 in flight (ops/s, ${ROUNDS} interleaved rounds × ${REPLICAS} processes per set-up, medians)`
  )
  const t = await sideBySide(
    "thread",
    ["off", "control", "metrics", "tracing", "tracingClientSpans"],
    "off",
    { ops: THREAD_OPS, rounds: ROUNDS, warmup: 2 },
    ["control"]
  )
  figure("monitoring.thread.off.opsPerSec", t.off!.rate, "ops/s")
  figure("monitoring.thread.metrics.opsPerSec", t.metrics!.rate, "ops/s")
  figure("monitoring.thread.tracing.opsPerSec", t.tracing!.rate, "ops/s")
  figure("monitoring.thread.tracingClientSpans.opsPerSec", t.tracingClientSpans!.rate, "ops/s")
  figure("monitoring.thread.off.cpuNsPerCall", t.off!.cpuNsPerCall, "ns CPU per call (all threads)")
  figure("monitoring.thread.metrics.cpuNsPerCall", t.metrics!.cpuNsPerCall, "ns CPU per call (all threads)")
  figure("monitoring.thread.tracing.cpuNsPerCall", t.tracing!.cpuNsPerCall, "ns CPU per call (all threads)")
  figure(
    "monitoring.thread.tracingClientSpans.cpuNsPerCall",
    t.tracingClientSpans!.cpuNsPerCall,
    "ns CPU per call (all threads)"
  )
  figure("monitoring.thread.control.opsPerSec", t.control!.rate, "ops/s")
  figure("monitoring.thread.controlRatio", t.control!.rateRatio, "×   (target ≈ 1 (noise floor))")
  ratio("monitoring_thread_metrics_ratio", t.metrics!.rateRatio, 1, "≥ 0.95")
  ratio("monitoring_thread_tracing_ratio", t.tracing!.rateRatio, 1, "≥ 0.75")
  ratio("monitoring.thread.tracingClientSpans.ratio", t.tracingClientSpans!.rateRatio, 1, "two spans a call")
  ratio("monitoring.thread.metrics.cpuRatio", t.metrics!.cpuRatio, 1, "≥ 0.95")
  ratio("monitoring.thread.tracing.cpuRatio", t.tracing!.cpuRatio, 1, "≥ 0.75")
  const baseline = earlier["threads.corps.opsPerSec"]
  if (baseline !== undefined) ratio("monitoring.thread.offVsBaselines", t.off!.rate, baseline, "≈ 1")

  if (canPin) {
    section(
      `monitoring: thread Env on one CPU (caller and Env threads pinned to CPU 0), ${ROUNDS} rounds × ${REPLICAS} processes`
    )
    const one = await sideBySide("threadOneCpu", ["off", "metrics", "tracing"], "off", {
      ops: THREAD_OPS / 2,
      rounds: ROUNDS,
      warmup: 2
    })
    figure("monitoring.thread.oneCpu.off.opsPerSec", one.off!.rate, "ops/s")
    ratio("monitoring.thread.oneCpu.metrics.ratio", one.metrics!.rateRatio, 1, "≥ 0.95")
    ratio("monitoring.thread.oneCpu.tracing.ratio", one.tracing!.rateRatio, 1, "≥ 0.75")
  }

  section(
    `monitoring: the caller's side of a thread call alone (no Env threads; pinned to CPU 0), ${ROUNDS} rounds × ${REPLICAS} processes`
  )
  const c = await sideBySide("caller", ["off", "metrics", "tracing", "tracingClientSpans"], "off", {
    ops: FAST_OPS / 2,
    rounds: ROUNDS,
    warmup: 3
  })
  for (const name of ["off", "metrics", "tracing", "tracingClientSpans"])
    figure(`monitoring.caller.${name}.nsPerCall`, c[name]!.cpuNsPerCall, "ns CPU per call")
  ratio("monitoring.caller.metrics.cpuRatio", c.metrics!.cpuRatio, 1)
  ratio("monitoring.caller.tracing.cpuRatio", c.tracing!.cpuRatio, 1)

  section(
    `monitoring: FastPath Func, ${FAST_OPS.toLocaleString("en-US")} sequential calls (calls/s, ${ROUNDS} rounds × ${REPLICAS} processes, medians)`
  )
  const f = await sideBySide("fastpath", ["off", "metrics"], "off", { ops: FAST_OPS, rounds: ROUNDS, warmup: 3 })
  figure("monitoring.fastpath.off.callsPerSec", f.off!.rate, "calls/s")
  figure("monitoring.fastpath.metrics.callsPerSec", f.metrics!.rate, "calls/s")
  ratio("monitoring_fastpath_metrics_ratio", f.metrics!.rateRatio, 1, "≥ 0.9")
  ratio("monitoring.fastpath.metrics.cpuRatio", f.metrics!.cpuRatio, 1, "≥ 0.9")
  const fastBaseline = earlier["fastpath.func.callsPerSec"]
  if (fastBaseline !== undefined) ratio("monitoring.fastpath.offVsFastPath", f.off!.rate, fastBaseline, "≈ 1")
}

if (process.argv[2] === "--child") {
  await serveChild(process.argv[3] as Kind, process.argv[4]!)
} else if (import.meta.main) {
  await runMonitoring()
  printJson()
  process.exit(0)
}

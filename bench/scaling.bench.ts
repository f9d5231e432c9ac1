/**
 * Autoscaling under a burst (issue 9): idle → a burst of CPU-bound ~1 ms
 * tasks that needs every core → idle, side by side on
 * - a scaling thread Env `{ min: 1, max: cores }` (default policy),
 * - a fixed thread Env of `cores` threads (the reference),
 * - Piscina with `minThreads: 1, maxThreads: cores` and an idle timeout
 *   equal to the scaling Env's cooldown.
 *
 * Figures: time from the burst's start until throughput (over a sliding
 * 100 ms window) reaches 90% of the fixed Env's, for the scaling Env and for
 * Piscina; the burst's completion time against the fixed Env's; and the time
 * from the burst's end until the scaling Env is back at `min` (its last Env
 * removed), against its cooldown.
 *
 * Run alone: `npx node bench/scaling.bench.ts`.
 */
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import { Effect, Layer, ManagedRuntime, Stream } from "effect"
import { Piscina } from "piscina"
import { Corps, Scaling } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"
import { calibrate } from "./baselines/cpuBound.ts"
import { fixture } from "./baselines/pool.ts"
import { Bench, BenchLive } from "./corps/workers.ts"
import { median } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const module = new URL("./corps/workers.ts", import.meta.url).href
const CORES = availableParallelism()
/** Tasks in one burst: about a second of work for every core. */
const BURST_TASKS = 1000 * CORES
/** Calls kept in flight during the burst: enough to keep every core busy. */
const IN_FLIGHT = 8 * CORES
const WINDOW_MS = 100
const ROUNDS = 2
const COOLDOWN_MS = Scaling.defaults.downAfterMillis

/** One burst's completion times (ms from its start) and its total duration. */
interface Burst {
  readonly done: ReadonlyArray<number>
  readonly totalMs: number
}

/** Runs `BURST_TASKS` calls of `call` with `IN_FLIGHT` in flight; records when each completes. */
const burst = async (call: (seed: number) => Promise<number>): Promise<Burst> => {
  const done: Array<number> = []
  let next = 0
  const start = performance.now()
  const lane = async () => {
    while (next < BURST_TASKS) {
      await call(next++)
      done.push(performance.now() - start)
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
  return { done, totalMs: performance.now() - start }
}

/** Tasks per second over the whole burst. */
const rateOf = (b: Burst) => (b.done.length * 1000) / b.totalMs

/** The end of the first `WINDOW_MS` window whose rate reaches `target` tasks/s (the burst's end if none). */
const timeToRate = (b: Burst, target: number): number => {
  const needed = (target * WINDOW_MS) / 1000
  let from = 0
  for (let to = 0; to < b.done.length; to++) {
    while (b.done[to]! - b.done[from]! > WINDOW_MS) from++
    if (to - from + 1 >= needed && b.done[to]! >= WINDOW_MS) return b.done[to]!
  }
  return b.totalMs
}

/** A Corps with Bench in a thread Env of `count`, and what it reports. */
const startCorps = async (count: number | { readonly min: number; readonly max: number }) => {
  const runtime = ManagedRuntime.make(
    Corps.layer([BenchLive], { module, placement: { envs: { pool: { kind: "thread", count } }, default: "pool" } }).pipe(
      Layer.provide(NodeEnv.layer)
    )
  )
  const removed: Array<number> = []
  let size = typeof count === "number" ? count : count.min
  const bench = await runtime.runPromise(
    Effect.gen(function* () {
      yield* Effect.forkDetach(
        Corps.events.pipe(
          Stream.runForEach((event) =>
            Effect.sync(() => {
              if (event._tag === "EnvScaled") size = event.to
              if (event._tag === "EnvRemoved") removed.push(performance.now())
            })
          )
        )
      )
      // At rest: the warm spare has started (3 s at most).
      yield* Corps.events.pipe(
        Stream.filter((event) => event._tag === "SpareReady"),
        Stream.runHead,
        Effect.timeout("3 seconds"),
        Effect.ignore
      )
      return yield* Effect.service(Bench)
    })
  )
  return {
    call: (iterations: number) => (seed: number) => runtime.runPromise(bench.spin({ seed, iterations })),
    size: () => size,
    removed,
    close: () => runtime.dispose()
  }
}

/** Waits until `done()` holds, polling every 20 ms, for at most `limitMs`; answers the time waited. */
const waitUntil = async (done: () => boolean, limitMs: number): Promise<number> => {
  const start = performance.now()
  while (!done() && performance.now() - start < limitMs) await new Promise((r) => setTimeout(r, 20))
  return performance.now() - start
}

/** Runs the scaling benchmark and records its figures (report.ts); does not print the closing JSON. */
export const runScaling = async (): Promise<void> => {
  section(
    `scaling: idle → burst of ${BURST_TASKS} CPU tasks of ~1 ms, ${IN_FLIGHT} in flight → idle; ${CORES} cores (${ROUNDS} rounds, medians)`
  )
  const iterations = calibrate(1)
  const fixed = await startCorps(CORES)
  const scaling = await startCorps({ min: 1, max: CORES })
  const piscina = new Piscina({
    filename: fileURLToPath(fixture("cpuTask.ts")),
    minThreads: 1,
    maxThreads: CORES,
    idleTimeout: COOLDOWN_MS
  })
  const piscinaCall = (seed: number) => piscina.run({ seed, iterations }) as Promise<number>
  const results: Record<"fixed" | "scaling" | "piscina", Array<Burst>> = { fixed: [], scaling: [], piscina: [] }
  const backToMin: Array<number> = []
  const piscinaBackToMin: Array<number> = []
  try {
    // Warm every path once (JIT in the Envs, Piscina's task file), then let the scaling Env and Piscina go idle.
    await burst(fixed.call(iterations))
    await burst(piscinaCall)
    await waitUntil(() => piscina.threads.length === 1, COOLDOWN_MS + 5000)
    for (let round = 0; round < ROUNDS; round++) {
      results.fixed.push(await burst(fixed.call(iterations)))
      if (scaling.size() !== 1) throw new Error(`scaling Env not at min before the burst: ${scaling.size()}`)
      const seen = scaling.removed.length
      results.scaling.push(await burst(scaling.call(iterations)))
      const end = performance.now()
      await waitUntil(() => scaling.size() === 1 && scaling.removed.length > seen, COOLDOWN_MS + 10_000)
      backToMin.push(scaling.removed.at(-1)! - end)
      results.piscina.push(await burst(piscinaCall))
      piscinaBackToMin.push(await waitUntil(() => piscina.threads.length === 1, COOLDOWN_MS + 10_000))
    }
  } finally {
    await Promise.allSettled([fixed.close(), scaling.close(), piscina.destroy()])
  }
  const fixedRate = median(results.fixed.map(rateOf))
  const fixedMs = median(results.fixed.map((b) => b.totalMs))
  const scalingMs = median(results.scaling.map((b) => b.totalMs))
  const piscinaMs = median(results.piscina.map((b) => b.totalMs))
  figure("scaling_fixed_burst_ms", fixedMs, "ms (fixed Env at max)")
  figure("scaling_burst_ms", scalingMs, "ms (scaling Env 1..cores)")
  figure("scaling_piscina_burst_ms", piscinaMs, "ms (Piscina 1..cores)")
  figure("scaling_fixed_time_to_90pct_ms", median(results.fixed.map((b) => timeToRate(b, 0.9 * fixedRate))), "ms")
  figure(
    "scaling_time_to_90pct_ms",
    median(results.scaling.map((b) => timeToRate(b, 0.9 * fixedRate))),
    "ms (goal ≤ 1000)"
  )
  figure(
    "scaling_piscina_time_to_90pct_ms",
    median(results.piscina.map((b) => timeToRate(b, 0.9 * fixedRate))),
    "ms"
  )
  ratio("scaling_burst_ratio_vs_fixed", scalingMs, fixedMs, "≤ 1.1")
  ratio("scaling_piscina_burst_ratio_vs_fixed", piscinaMs, fixedMs)
  figure("scaling_back_to_min_ms", median(backToMin), `ms (goal ≤ cooldown ${COOLDOWN_MS} + 1000)`)
  figure("scaling_piscina_back_to_min_ms", median(piscinaBackToMin), `ms (idleTimeout ${COOLDOWN_MS})`)
}

if (import.meta.main) {
  await runScaling()
  printJson()
  process.exit(0)
}

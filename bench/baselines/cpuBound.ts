/**
 * CPU-bound baseline: N tasks of ~1 ms each run sequentially on the main
 * thread, on 2 raw worker threads, and on Piscina with 2 threads.
 */
import { median } from "../lib/measure.ts"
import { cpuWork } from "./fixtures/cpuWork.ts"
import { startPiscina } from "./piscina.ts"
import { fixture } from "./pool.ts"
import { startRawThreads } from "./rawThreads.ts"

/** Options of the CPU-bound baseline. */
export interface CpuBoundOptions {
  /** Tasks per round. Default 400. */
  readonly tasks?: number | undefined
  /** Target duration of one task on the main thread, ms. Default 1. */
  readonly taskMs?: number | undefined
  /** Timed rounds (median reported). Default 3. */
  readonly rounds?: number | undefined
  /** More variants to time in the same rounds (e.g. effect-corps); each returns the sum of its results. */
  readonly extra?: Record<string, (inputs: ReadonlyArray<{ seed: number; iterations: number }>) => Promise<number>>
}

/** Median wall time of a round of `tasks` tasks, ms, and speedups over the main thread. */
export interface CpuBoundResult {
  readonly tasks: number
  readonly iterations: number
  readonly taskMs: number
  readonly mainThreadMs: number
  readonly rawThreadsMs: number
  readonly piscinaMs: number
  readonly rawThreadsSpeedup: number
  readonly piscinaSpeedup: number
  /** Median ms of each extra variant. */
  readonly extraMs: Record<string, number>
}

/** Finds the iteration count that makes `cpuWork` take about `targetMs` on this thread (after JIT warm-up). */
export const calibrate = (targetMs: number): number => {
  const probe = 200_000
  for (let i = 0; i < 20; i++) cpuWork(i, probe)
  const times: Array<number> = []
  for (let i = 0; i < 9; i++) {
    const start = performance.now()
    cpuWork(i, probe)
    times.push(performance.now() - start)
  }
  return Math.max(1000, Math.round((probe * targetMs) / median(times)))
}

/** Runs the main-thread / raw-threads / Piscina comparison, interleaved round by round. */
export const cpuBound = async (options: CpuBoundOptions = {}): Promise<CpuBoundResult> => {
  const tasks = options.tasks ?? 400
  const iterations = calibrate(options.taskMs ?? 1)
  const inputs = Array.from({ length: tasks }, (_, seed) => ({ seed, iterations }))

  const raw = await startRawThreads<{ seed: number; iterations: number }, number>(fixture("cpuThread.ts"))
  const piscina = await startPiscina(fixture("cpuTask.ts"))
  try {
    // Each variant returns the sum of its results; all must agree with the main thread.
    const variants: Record<"main" | "raw" | "piscina", () => Promise<number>> = {
      main: async () => {
        let sum = 0
        for (const t of inputs) sum += cpuWork(t.seed, t.iterations)
        return sum
      },
      raw: async () => (await Promise.all(inputs.map(raw.call))).reduce((a, b) => a + b, 0),
      piscina: async () =>
        (await Promise.all(inputs.map((t) => piscina.run(t) as Promise<number>))).reduce((a, b) => a + b, 0),
      ...Object.fromEntries(Object.entries(options.extra ?? {}).map(([name, run]) => [name, () => run(inputs)]))
    }
    const times: Record<string, Array<number>> = Object.fromEntries(Object.keys(variants).map((name) => [name, []]))
    const rounds = options.rounds ?? 3
    // Round 0 warms the JIT in every worker and is not timed.
    for (let round = 0; round <= rounds; round++) {
      let expected: number | undefined
      for (const [name, variant] of Object.entries(variants)) {
        const start = performance.now()
        const sum = await variant()
        const ms = performance.now() - start
        expected ??= sum
        if (sum !== expected) throw new Error(`cpuBound: ${name} sum ${sum} differs from ${expected}`)
        if (round > 0) times[name]!.push(ms)
      }
    }
    const mainThreadMs = median(times["main"]!)
    const rawThreadsMs = median(times["raw"]!)
    const piscinaMs = median(times["piscina"]!)
    return {
      tasks,
      iterations,
      taskMs: mainThreadMs / tasks,
      mainThreadMs,
      rawThreadsMs,
      piscinaMs,
      rawThreadsSpeedup: mainThreadMs / rawThreadsMs,
      piscinaSpeedup: mainThreadMs / piscinaMs,
      extraMs: Object.fromEntries(Object.keys(options.extra ?? {}).map((name) => [name, median(times[name]!)]))
    }
  } finally {
    await Promise.all([raw.close(), piscina.destroy()])
  }
}

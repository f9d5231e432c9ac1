/** Piscina baselines: 2 threads with default settings, and tuned `concurrentTasksPerWorker`. */
import { fileURLToPath } from "node:url"
import { Piscina } from "piscina"
import { throughput } from "../lib/measure.ts"
import { type BaselinePool, driveInFlight, fixture, IN_FLIGHT, POOL_SIZE } from "./pool.ts"

const WARMUP_CALLS = 2000

/** Starts a Piscina pool of 2 threads on `file` (all threads started). */
export const startPiscina = async (file: URL, concurrentTasksPerWorker?: number): Promise<Piscina> => {
  const pool = new Piscina({
    filename: fileURLToPath(file),
    minThreads: POOL_SIZE,
    maxThreads: POOL_SIZE,
    ...(concurrentTasksPerWorker === undefined ? {} : { concurrentTasksPerWorker })
  })
  // Piscina starts minThreads at construction; wait until each has loaded the task file.
  await Promise.all(Array.from({ length: POOL_SIZE * 4 }, () => pool.run(0)))
  return pool
}

/** Piscina with 2 threads calling `n => n + 1`, 64 in flight; default settings unless `concurrentTasksPerWorker` is given. */
export const piscinaPool = async (concurrentTasksPerWorker?: number): Promise<BaselinePool> => {
  const pool = await startPiscina(fixture("incTask.ts"), concurrentTasksPerWorker)
  const call = (n: number): Promise<number> => pool.run(n)
  const run = (ops: number): Promise<void> => driveInFlight(ops, IN_FLIGHT, call)
  await run(WARMUP_CALLS)
  return { run, close: () => pool.destroy() }
}

/** The best Piscina setting found by `piscinaBest`, with the pool left open. */
export interface PiscinaBest {
  readonly pool: BaselinePool
  readonly concurrentTasksPerWorker: number
  /** Throughput measured for every setting tried, ops/s. */
  readonly tried: Readonly<Record<number, number>>
}

/** Tries each `concurrentTasksPerWorker` once (short measurement) and keeps the fastest pool open. */
export const piscinaBest = async (
  settings: ReadonlyArray<number> = [8, 16, 32, 64],
  ops = 10_000
): Promise<PiscinaBest> => {
  const tried: Record<number, number> = {}
  let best: { pool: BaselinePool; setting: number; rate: number } | undefined
  for (const setting of settings) {
    const pool = await piscinaPool(setting)
    const rate = await throughput(pool.run, { ops, rounds: 3, warmup: 1 })
    tried[setting] = rate
    if (best === undefined || rate > best.rate) {
      await best?.pool.close()
      best = { pool, setting, rate }
    } else {
      await pool.close()
    }
  }
  if (best === undefined) throw new Error("piscinaBest: no setting to try")
  return { pool: best.pool, concurrentTasksPerWorker: best.setting, tried }
}

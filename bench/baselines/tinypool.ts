/** Tinypool baseline: 2 threads, default settings otherwise. */
import { fileURLToPath } from "node:url"
import { Tinypool } from "tinypool"
import { type BaselinePool, driveInFlight, fixture, IN_FLIGHT, POOL_SIZE } from "./pool.ts"

const WARMUP_CALLS = 2000

/** Tinypool with 2 threads calling `n => n + 1`, 64 in flight. */
export const tinypoolPool = async (): Promise<BaselinePool> => {
  const pool = new Tinypool({
    filename: fileURLToPath(fixture("incTask.ts")),
    minThreads: POOL_SIZE,
    maxThreads: POOL_SIZE
  })
  const call = (n: number): Promise<number> => pool.run(n)
  const run = (ops: number): Promise<void> => driveInFlight(ops, IN_FLIGHT, call)
  await run(WARMUP_CALLS)
  return { run, close: () => pool.destroy() }
}

/**
 * Raw worker_threads baselines: the fastest a thread pool of plain Node can go
 * with one `postMessage` per call, and with every message of a flush batched
 * into one `postMessage` (the practical limit for a typed thread transport).
 */
import { Worker } from "node:worker_threads"
import { percentile } from "../lib/measure.ts"
import {
  type BaselinePool,
  driveInFlight,
  fixture,
  IN_FLIGHT,
  makeRawDispatch,
  POOL_SIZE,
  withTimeout
} from "./pool.ts"

/** Options of a raw thread pool. */
export interface RawThreadsOptions {
  /** Worker threads. Default 2. */
  readonly size?: number | undefined
  /** Batch every request of a microtask flush into one `postMessage` per worker. Default false. */
  readonly batched?: boolean | undefined
}

/** A raw thread pool calling a fixture that answers `{ id, n }` with `{ id, r }`. */
export interface RawThreads<I, O> {
  readonly call: (n: I) => Promise<O>
  readonly close: () => Promise<void>
}

/** Starts `size` worker threads on `file` (each online before this resolves) and dispatches to the least busy one. */
export const startRawThreads = async <I, O>(file: URL, options: RawThreadsOptions = {}): Promise<RawThreads<I, O>> => {
  const size = options.size ?? POOL_SIZE
  const workers = Array.from({ length: size }, () => new Worker(file))
  const dispatch = makeRawDispatch<I, O>(
    workers.map((worker) => (message: unknown) => worker.postMessage(message)),
    options.batched ?? false
  )
  const online = workers.map((worker, index) => {
    worker.on("message", (message: unknown) => dispatch.receive(index, message))
    worker.on("error", (e) => dispatch.failAll(e))
    worker.on("exit", (code) => {
      if (!dispatch.stopped()) dispatch.failAll(new Error(`worker exited with code ${code}`))
    })
    return new Promise<void>((resolve, reject) => {
      worker.once("online", resolve)
      worker.once("error", reject)
    })
  })

  const close = async (): Promise<void> => {
    if (dispatch.stopped()) return
    dispatch.stop()
    await withTimeout(Promise.all(workers.map((w) => w.terminate())), 5000, "terminating worker threads")
  }

  try {
    await withTimeout(Promise.all(online), 10_000, "starting worker threads")
  } catch (e) {
    await close()
    throw e
  }
  return { call: dispatch.call, close }
}

const WARMUP_CALLS = 5000

const echoPool = async (batched: boolean): Promise<BaselinePool> => {
  const pool = await startRawThreads<number, number>(fixture("echoThread.ts"), { batched })
  const run = (ops: number): Promise<void> => driveInFlight(ops, IN_FLIGHT, pool.call)
  await run(WARMUP_CALLS)
  return { run, close: pool.close }
}

/** Raw worker_threads pool of 2, one `postMessage` per call, 64 in flight. */
export const rawThreads = (): Promise<BaselinePool> => echoPool(false)

/** Raw worker_threads pool of 2, each flush of requests (and of replies) sent as one `postMessage`. */
export const rawThreadsBatched = (): Promise<BaselinePool> => echoPool(true)

/** Latency percentiles of a round trip, in microseconds. */
export interface Latency {
  readonly p50: number
  readonly p99: number
}

/** Raw `postMessage` ping-pong with one call in flight to one worker: p50 and p99 round trip in µs. */
export const rawThreadLatency = async (options: { calls?: number; warmup?: number } = {}): Promise<Latency> => {
  const calls = options.calls ?? 20_000
  const pool = await startRawThreads<number, number>(fixture("echoThread.ts"), { size: 1 })
  try {
    for (let i = 0; i < (options.warmup ?? 2000); i++) await pool.call(i)
    const samples = new Array<number>(calls)
    for (let i = 0; i < calls; i++) {
      const start = performance.now()
      const r = await pool.call(i)
      samples[i] = (performance.now() - start) * 1000
      if (r !== i + 1) throw new Error(`wrong result ${r} for ${i}`)
    }
    return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
  } finally {
    await pool.close()
  }
}

/**
 * Raw worker_threads baselines: the fastest a thread pool of plain Node can go
 * with one `postMessage` per call, and with every message of a flush batched
 * into one `postMessage` (the practical limit for a typed thread transport).
 */
import { Worker } from "node:worker_threads"
import { percentile } from "../lib/measure.ts"
import { type BaselinePool, driveInFlight, fixture, IN_FLIGHT, POOL_SIZE, withTimeout } from "./pool.ts"

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

interface Slot<I> {
  readonly worker: Worker
  inFlight: number
  outbox: Array<{ id: number; n: I }>
}

interface Reply<O> {
  readonly id: number
  readonly r: O
}

/** Starts `size` worker threads on `file` (each online before this resolves) and dispatches to the least busy one. */
export const startRawThreads = async <I, O>(file: URL, options: RawThreadsOptions = {}): Promise<RawThreads<I, O>> => {
  const size = options.size ?? POOL_SIZE
  const batched = options.batched ?? false
  const pending = new Map<number, PromiseWithResolvers<O>>()
  let nextId = 0
  let closing = false
  let flushScheduled = false

  const failAll = (error: Error): void => {
    for (const p of pending.values()) p.reject(error)
    pending.clear()
  }

  const slots: Array<Slot<I>> = []
  const online: Array<Promise<void>> = []
  for (let i = 0; i < size; i++) {
    const worker = new Worker(file)
    const slot: Slot<I> = { worker, inFlight: 0, outbox: [] }
    slots.push(slot)
    online.push(
      new Promise<void>((resolve, reject) => {
        worker.once("online", resolve)
        worker.once("error", reject)
      })
    )
    const settle = (reply: Reply<O>): void => {
      const p = pending.get(reply.id)
      if (p === undefined) return
      pending.delete(reply.id)
      slot.inFlight--
      p.resolve(reply.r)
    }
    worker.on("message", (msg: Reply<O> | ReadonlyArray<Reply<O>>) => {
      if (Array.isArray(msg)) for (const reply of msg) settle(reply)
      else settle(msg as Reply<O>)
    })
    worker.on("error", (e) => failAll(e))
    worker.on("exit", (code) => {
      if (!closing) failAll(new Error(`worker exited with code ${code}`))
    })
  }

  const flush = (): void => {
    flushScheduled = false
    for (const slot of slots) {
      if (slot.outbox.length === 0) continue
      slot.worker.postMessage(slot.outbox)
      slot.outbox = []
    }
  }

  // Least-in-flight dispatch: with equal workers this alternates like round robin,
  // and a slow worker gets less work.
  const pick = (): Slot<I> => {
    let best = slots[0]!
    for (let i = 1; i < slots.length; i++) if (slots[i]!.inFlight < best.inFlight) best = slots[i]!
    return best
  }

  const call = (n: I): Promise<O> => {
    if (closing) return Promise.reject(new Error("pool closed"))
    const id = nextId++
    const p = Promise.withResolvers<O>()
    pending.set(id, p)
    const slot = pick()
    slot.inFlight++
    if (batched) {
      slot.outbox.push({ id, n })
      if (!flushScheduled) {
        flushScheduled = true
        queueMicrotask(flush)
      }
    } else {
      slot.worker.postMessage({ id, n })
    }
    return p.promise
  }

  const close = async (): Promise<void> => {
    if (closing) return
    closing = true
    failAll(new Error("pool closed"))
    await withTimeout(Promise.all(slots.map((s) => s.worker.terminate())), 5000, "terminating worker threads")
  }

  try {
    await withTimeout(Promise.all(online), 10_000, "starting worker threads")
  } catch (e) {
    await close()
    throw e
  }
  return { call, close }
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

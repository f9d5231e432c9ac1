/**
 * How busy one thread or process Env is, measured inside it and read by the
 * caller over the Env's own link (the `load` control call). Autoscaling
 * decides from these samples and monitoring shows them; both read the same
 * figures, so what the dashboard shows is what the scaler saw.
 */

import { performance } from "node:perf_hooks"
import { getHeapStatistics } from "node:v8"
import { threadId } from "node:worker_threads"

/** One sample of an Env's load. */
export interface EnvLoad {
  /**
   * The share of wall time its event loop was busy (0 to 1) since the
   * previous sample (since the Env started, for the first one): Node's
   * `performance.eventLoopUtilization()`.
   */
  readonly utilization: number
  /** Milliseconds covered by `utilization`. */
  readonly windowMillis: number
  /** V8 heap of this Env's isolate, in bytes. */
  readonly heapUsed: number
  readonly heapTotal: number
  /** The process that runs it, and its thread (0 for a process' main thread). */
  readonly pid: number
  readonly threadId: number
}

/**
 * A sampler for the Env it runs in: each call answers the load since the
 * previous call. One per Env: two readers would split the windows between
 * them, so the caller reads it from one place (EnvPool's `load`).
 */
export const sampler = (): (() => EnvLoad) => {
  let previous = performance.eventLoopUtilization()
  return () => {
    const current = performance.eventLoopUtilization()
    const delta = performance.eventLoopUtilization(current, previous)
    previous = current
    const heap = getHeapStatistics()
    return {
      utilization: delta.utilization,
      windowMillis: delta.idle + delta.active,
      heapUsed: heap.used_heap_size,
      heapTotal: heap.total_heap_size,
      pid: process.pid,
      threadId
    }
  }
}

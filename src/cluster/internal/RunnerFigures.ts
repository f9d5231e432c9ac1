/**
 * A runner's monitoring figures on their way to the caller, through the
 * runner-load table (src/cluster/RunnerLoad.ts):
 *
 * - on the runner, {@link Totals} adds up what its Recorder drains every
 *   second (the calls its own Workers made) into totals since it started,
 *   and takes the entity counts effect/cluster keeps (`effect_cluster_entities`,
 *   `effect_cluster_entity_mailbox_size`);
 * - on the caller, {@link since} turns two successive totals of one runner
 *   into the `Delta` a thread or process Env would have answered, so the
 *   caller's Recorder merges a runner like any other slot.
 *
 * Totals, not deltas, go into the table: any number of callers read it, and
 * each keeps its own previous reading.
 */
import type { Metric } from "effect"
import { callRow, type Delta } from "../../internal/recorder.ts"
import type { Figures } from "../RunnerLoad.ts"

type CallTotals = Figures["calls"][number]

/** The key of one series of calls: (Worker, method, Env). */
const idOf = (c: { readonly worker: string; readonly method: string; readonly env: string }): string =>
  `${c.worker}\u0000${c.method}\u0000${c.env}`

interface MutableTotals {
  readonly worker: string
  readonly method: string
  readonly env: string
  calls: number
  observed: number
  inFlight: number
  readonly failures: Map<string, number>
  readonly buckets: Array<number>
  sum: number
  min: number
  max: number
}

/** The runner side: totals since the runner started. */
export class Totals {
  private readonly calls = new Map<string, MutableTotals>()

  /** Adds what the runner's Recorder drained since the previous call. */
  add(delta: Delta): void {
    // A series the drain left out had nothing in flight.
    const reported = new Set<string>()
    for (const d of delta.calls) {
      const id = idOf(d)
      reported.add(id)
      let t = this.calls.get(id)
      if (t === undefined) {
        t = {
          worker: d.worker,
          method: d.method,
          env: d.env,
          calls: 0,
          observed: 0,
          inFlight: 0,
          failures: new Map(),
          buckets: d.buckets.map(() => 0),
          sum: 0,
          min: Number.POSITIVE_INFINITY,
          max: Number.NEGATIVE_INFINITY
        }
        this.calls.set(id, t)
      }
      t.calls += d.calls
      t.observed += d.observed
      t.inFlight = d.inFlight
      t.sum += d.sum
      if (d.min < t.min) t.min = d.min
      if (d.max > t.max) t.max = d.max
      for (let i = 0; i < d.buckets.length; i++) t.buckets[i] = (t.buckets[i] ?? 0) + d.buckets[i]!
      for (const [tag, n] of d.failures) t.failures.set(tag, (t.failures.get(tag) ?? 0) + n)
    }
    for (const [id, t] of this.calls) if (!reported.has(id)) t.inFlight = 0
  }

  /** The totals, with the entity gauges read from the runner's registry now (`Metric.snapshot`). */
  figures(metrics: ReadonlyArray<Metric.Metric.Snapshot>, env: string): Figures {
    const calls: Array<CallTotals> = []
    for (const t of this.calls.values()) {
      const row = callRow(t)
      // JSON has no infinity: before a first timed call these are 0, and `observed` says so.
      calls.push(t.observed > 0 ? row : { ...row, min: 0, max: 0 })
    }
    return { calls, workers: entityGauges(metrics, env) }
  }
}

/** Live entities and admitted messages per entity type (a Worker's name), as effect/cluster counts them. */
const entityGauges = (metrics: ReadonlyArray<Metric.Metric.Snapshot>, env: string): Figures["workers"] => {
  const byType = new Map<string, { instances: number; mailbox: number }>()
  const of = (type: string) => {
    let found = byType.get(type)
    if (found === undefined) {
      found = { instances: 0, mailbox: 0 }
      byType.set(type, found)
    }
    return found
  }
  for (const metric of metrics) {
    if (metric.type !== "Gauge") continue
    const type = (metric.attributes as Record<string, unknown> | undefined)?.type
    if (typeof type !== "string") continue
    if (metric.id === "effect_cluster_entities") of(type).instances += Number(metric.state.value)
    else if (metric.id === "effect_cluster_entity_mailbox_size") of(type).mailbox += Number(metric.state.value)
  }
  return [...byType].map(([worker, g]) => ({ worker, env, ...g }))
}

/**
 * The caller side: what a runner's figures add to its `previous` reading
 * (all of them for a first reading, or for a runner whose totals went down:
 * a new process), as a Delta whose Env is the caller's name for the
 * cluster (`env`).
 */
export const since = (previous: Figures | undefined, current: Figures, env: string): Delta => {
  const before = new Map<string, CallTotals>()
  for (const c of previous?.calls ?? []) before.set(idOf(c), c)
  const calls: Array<Delta["calls"][number]> = []
  for (const c of current.calls) {
    const p = before.get(idOf(c))
    const base = p !== undefined && p.calls <= c.calls && p.observed <= c.observed ? p : undefined
    const failures: Array<readonly [string, number]> = []
    const failedBefore = new Map(base?.failures ?? [])
    for (const [tag, n] of c.failures) {
      const added = n - (failedBefore.get(tag) ?? 0)
      if (added > 0) failures.push([tag, added])
    }
    const observed = c.observed - (base?.observed ?? 0)
    calls.push({
      worker: c.worker,
      method: c.method,
      env,
      calls: c.calls - (base?.calls ?? 0),
      observed,
      inFlight: c.inFlight,
      failures,
      buckets: c.buckets.map((n, i) => n - (base?.buckets[i] ?? 0)),
      sum: c.sum - (base?.sum ?? 0),
      // The runner's extremes since it started: they bound the new calls' too.
      min: observed > 0 ? c.min : Number.POSITIVE_INFINITY,
      max: observed > 0 ? c.max : Number.NEGATIVE_INFINITY
    })
  }
  return { calls, workers: current.workers.map((w) => ({ ...w, env })) }
}

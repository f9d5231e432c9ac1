/**
 * The Snapshot builder: what every monitoring view (the dashboard's page,
 * JSON and SSE, `corps status`, `corps top`) reads. A `Monitor` in context
 * when a Corps is built makes that Corps (and the Corps nested in it) report
 * to it: its tree of Workers and where they are placed, the pools of its
 * thread and process Envs, and its events. A snapshot joins that with the
 * figures in the caller's metric registry (src/monitoring/metrics.ts), so the
 * views show what Prometheus scrapes.
 *
 * Without a Monitor in context nothing registers and nothing is kept: a Corps
 * looks it up once, when it is built.
 *
 * @since 0.3.0
 */
import { Context, Effect, Fiber, Layer, Metric, PubSub, type Scope, Stream } from "effect"
import type { CorpsEvent } from "../CorpsEvent.ts"
import type { EventHub } from "../internal/events.ts"
import type * as Placement from "../Placement.ts"
import type { AnyImplementation } from "../Worker.ts"
import * as Metrics from "./metrics.ts"
import type * as S from "./Snapshot.ts"

type CorpsStats = S.CorpsStats
type EnvStats = typeof S.EnvStats.Type
type MethodStats = typeof S.MethodStats.Type
type SlotStats = typeof S.SlotStats.Type
type Snapshot = S.Snapshot
type WorkerStats = typeof S.WorkerStats.Type

/**
 * How many recent events a snapshot carries (oldest first): enough for a
 * timeline of the last minutes of a troubled Corps, small enough to send
 * every second.
 *
 * @since 0.3.0
 * @category constants
 */
export const RECENT_EVENTS = 200

/**
 * One Worker of a registered Corps: its kind, the Env it is placed in, and,
 * for a Corps made with `Corps.make`, its private members.
 *
 * @since 0.3.0
 * @category models
 */
export interface WorkerSource {
  readonly name: string
  readonly kind: "func" | "conc" | "corps"
  readonly env: string
  readonly envKind: EnvStats["kind"]
  /** Func replicas where the Corps knows them without metrics (1 locally, the Env's size or `replicas`). */
  readonly replicas?: number | undefined
  readonly methods: ReadonlyArray<string>
  readonly members: ReadonlyArray<WorkerSource>
}

/**
 * A Corps as it registers itself: its id, name, the Corps it is nested in
 * (its id), and its Workers.
 *
 * @since 0.3.0
 * @category models
 */
export interface CorpsSource {
  readonly id: string
  readonly name: string
  readonly parent: string | undefined
  readonly workers: ReadonlyArray<WorkerSource>
}

/**
 * The Workers of a Corps as the Monitor shows them, from its members and
 * their resolved placement. Private members live where their Corps lives.
 *
 * @since 0.3.0
 * @category constructors
 */
export const workersOf = (
  members: ReadonlyArray<AnyImplementation>,
  resolved: ReadonlyMap<string, Placement.Resolved>,
  owner?: { readonly env: string; readonly envKind: EnvStats["kind"] } | undefined
): ReadonlyArray<WorkerSource> =>
  members.map((impl) => {
    const where = resolved.get(impl.worker.key)
    const env = owner?.env ?? where?.envName ?? "local"
    const envKind = owner?.envKind ?? where?.env.kind ?? "local"
    const pinned = where?.strategy === "pinned" ? 1 : undefined
    return {
      name: impl.worker.key,
      kind: impl.members.length > 0 ? "corps" : impl.kind,
      env,
      envKind,
      replicas: envKind === "local" ? 1 : (where?.replicas ?? pinned),
      methods: Object.keys(impl.worker.methods),
      members: workersOf(impl.members, resolved, { env, envKind })
    }
  })

/**
 * What a thread or process of an Env shows without asking it anything: the
 * calls the caller has in flight on it, and why its link is closed (absent
 * while it serves).
 *
 * @since 0.3.0
 * @category models
 */
export interface SlotSource {
  readonly inFlight: number
  readonly closeReason: string | undefined
  /** Where a cluster runner is reached (`host:port`). */
  readonly address?: string | undefined
  /** The host name of the machine a cluster runner runs on. */
  readonly host?: string | undefined
}

/**
 * The pool of one Env name, as its provider registers it.
 *
 * @since 0.3.0
 * @category models
 */
export interface EnvSource {
  readonly name: string
  readonly kind: EnvStats["kind"]
  /** Its current number of slots (a scaling Env moves between `min` and `max`). */
  readonly size: () => number
  readonly min?: number | undefined
  readonly max?: number | undefined
  readonly slot: (index: number) => SlotSource | undefined
}

/** What the events told of one slot: how often it restarted, and whether its supervisor gave up. */
interface SlotFacts {
  restarts: number
  reason: string | undefined
  stopped: boolean
}

/**
 * Collects what the Corps built under it report, and answers snapshots.
 *
 * @since 0.3.0
 * @category models
 */
export class MonitorState {
  private readonly corps = new Map<string, CorpsSource>()
  private readonly envs = new Map<string, Map<string, EnvSource>>()
  private readonly recent: Array<CorpsEvent> = []
  private readonly facts = new Map<string, SlotFacts>()
  private readonly hubs = new WeakSet<EventHub>()
  /** Every event of every registered Corps, as it happens (for live views). */
  readonly live: PubSub.PubSub<CorpsEvent>

  constructor(live: PubSub.PubSub<CorpsEvent>) {
    this.live = live
  }

  /**
   * Registers a Corps until the current scope closes, and follows the
   * events of its hub (once per hub: nested Corps share their root's). The
   * subscription is taken before this returns, so no event of the Envs the
   * Corps starts next is missed.
   */
  addCorps(source: CorpsSource, hub: EventHub): Effect.Effect<void, never, Scope.Scope> {
    const state = this
    return Effect.gen(function* () {
      state.corps.set(source.id, source)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          state.corps.delete(source.id)
          state.envs.delete(source.id)
          // What the events told of its slots goes with it: a long program that builds Corps keeps nothing of closed ones.
          const prefix = `${source.id}\u0000`
          for (const key of state.facts.keys()) if (key.startsWith(prefix)) state.facts.delete(key)
          for (const key of state.stoppedEnvs) if (key.startsWith(prefix)) state.stoppedEnvs.delete(key)
        })
      )
      if (state.hubs.has(hub)) return
      state.hubs.add(hub)
      const subscription = yield* PubSub.subscribe(hub.pubsub)
      const follow = yield* Effect.forkDetach(
        Effect.forever(Effect.flatMap(PubSub.take(subscription), (event) => state.record(event)))
      )
      yield* Effect.addFinalizer(() => Fiber.interrupt(follow))
    })
  }

  /** Registers the pool of one Env of Corps `corps` until the current scope closes. */
  addEnv(corps: string, source: EnvSource): Effect.Effect<void, never, Scope.Scope> {
    return Effect.andThen(
      Effect.sync(() => {
        const envs = this.envs.get(corps) ?? new Map<string, EnvSource>()
        envs.set(source.name, source)
        this.envs.set(corps, envs)
      }),
      Effect.addFinalizer(() => Effect.sync(() => this.envs.get(corps)?.delete(source.name)))
    )
  }

  private record(event: CorpsEvent): Effect.Effect<void> {
    this.recent.push(event)
    if (this.recent.length > RECENT_EVENTS) this.recent.shift()
    switch (event._tag) {
      case "EnvStarted": {
        const facts = this.factsOf(event.corps, event.env, event.index)
        if (event.attempt > 0) facts.restarts++
        facts.reason = event.attempt > 0 ? facts.reason : undefined
        break
      }
      case "EnvCrashed":
        this.factsOf(event.corps, event.env, event.index).reason = `${event.reason}: ${event.detail}`
        break
      case "SupervisionExhausted":
        // An Env given up on (not a single Worker of it): every slot of it stops.
        if (event.env !== undefined && event.worker === undefined) {
          for (const [key, facts] of this.facts) {
            if (key.startsWith(slotPrefix(event.corps, event.env))) {
              facts.stopped = true
              facts.reason = event.detail
            }
          }
          this.stoppedEnvs.add(slotPrefix(event.corps, event.env))
        }
        break
    }
    return PubSub.publish(this.live, event)
  }

  private readonly stoppedEnvs = new Set<string>()

  private factsOf(corps: string, env: string, index: number): SlotFacts {
    const key = `${slotPrefix(corps, env)}${index}`
    let facts = this.facts.get(key)
    if (facts === undefined) {
      facts = { restarts: 0, reason: undefined, stopped: this.stoppedEnvs.has(slotPrefix(corps, env)) }
      this.facts.set(key, facts)
    }
    return facts
  }

  /** The snapshot of everything registered now, with the figures of `metrics` (a `Metric.snapshot`). */
  snapshotWith(metrics: ReadonlyArray<Metric.Metric.Snapshot>, at: number): Snapshot {
    const figures = Figures.from(metrics)
    const roots = [...this.corps.values()].filter((c) => c.parent === undefined || !this.corps.has(c.parent))
    const stats = roots.map((root) => this.corpsStats(root, figures))
    const corps: CorpsStats =
      stats.length === 1 ? stats[0]! : { id: "", name: "(all)", workers: [], envs: [], children: stats }
    return { at, corps, events: [...this.recent] }
  }

  private corpsStats(source: CorpsSource, figures: Figures): CorpsStats {
    const nested = [...this.corps.values()].filter((c) => c.parent === source.id)
    const envNames = new Map<string, EnvStats["kind"]>()
    for (const worker of source.workers) envNames.set(worker.env, worker.envKind)
    const pools = this.envs.get(source.id)
    return {
      id: source.id,
      name: source.name,
      workers: source.workers.map((w) => workerStats(source.name, w, figures, pools?.get(w.env)?.size())),
      envs: [...envNames].map(([name, kind]) => this.envStats(source, name, kind, pools?.get(name), figures)),
      children: [
        // A Corps made with Corps.make: its private members, placed with it.
        ...source.workers
          .filter((w) => w.kind === "corps")
          .map((w): CorpsStats => privateCorps(`${source.name}/${w.name}`, `${source.id}/${w.name}`, w, figures)),
        ...nested.map((c) => this.corpsStats(c, figures))
      ]
    }
  }

  private envStats(
    corps: CorpsSource,
    name: string,
    kind: EnvStats["kind"],
    pool: EnvSource | undefined,
    figures: Figures
  ): EnvStats {
    if (pool === undefined) {
      // The caller's runtime, or an Env whose provider does not report slots (the cluster).
      return { name, kind, size: kind === "local" ? 1 : 0, slots: [] }
    }
    const size = pool.size()
    const slots: Array<SlotStats> = []
    for (let index = 0; index < size; index++) {
      const slot = pool.slot(index)
      const facts = this.facts.get(`${slotPrefix(corps.id, name)}${index}`)
      const series = figures.slot(corps.name, name, index)
      const state: SlotStats["state"] =
        series.state ??
        (slot === undefined || slot.closeReason === undefined
          ? "serving"
          : facts?.stopped === true || this.stoppedEnvs.has(slotPrefix(corps.id, name))
            ? "stopped"
            : "restarting")
      const reason = facts?.reason ?? slot?.closeReason
      slots.push({
        index,
        state,
        ...(reason === undefined ? {} : { reason }),
        // A pid of 0 is the recorder's "not sampled yet" (a slot just started or restarting): none of its load is known.
        ...(series.pid === undefined || series.pid === 0
          ? {}
          : {
              pid: series.pid,
              ...(series.threadId === undefined ? {} : { threadId: series.threadId }),
              ...(series.utilization === undefined ? {} : { utilization: series.utilization }),
              ...(series.heapUsed === undefined ? {} : { heapUsed: series.heapUsed })
            }),
        ...(slot?.address === undefined ? {} : { address: slot.address }),
        ...(slot?.host === undefined ? {} : { host: slot.host }),
        inFlight: slot?.inFlight ?? 0,
        restarts: Math.max(facts?.restarts ?? 0, series.restarts ?? 0)
      })
    }
    return {
      name,
      kind,
      size,
      ...(pool.min === undefined ? {} : { min: pool.min }),
      ...(pool.max === undefined ? {} : { max: pool.max }),
      slots
    }
  }
}

const slotPrefix = (corps: string, env: string) => `${corps}\u0000${env}\u0000`

const privateCorps = (name: string, id: string, owner: WorkerSource, figures: Figures): CorpsStats => ({
  id,
  name,
  workers: owner.members.map((m) => workerStats(name, m, figures)),
  envs: [],
  children: owner.members
    .filter((m) => m.kind === "corps")
    .map((m) => privateCorps(`${name}/${m.name}`, `${id}/${m.name}`, m, figures))
})

const workerStats = (
  corps: string,
  worker: WorkerSource,
  figures: Figures,
  envSize?: number | undefined
): WorkerStats => {
  const own = figures.worker(corps, worker.name)
  return {
    name: worker.name,
    kind: worker.kind,
    env: worker.env,
    // Without the instances metric (metrics off), a Func's replicas are still known from its placement.
    instances: own.instances ?? (worker.kind === "conc" ? 0 : (worker.replicas ?? envSize ?? 1)),
    mailbox: own.mailbox ?? 0,
    methods: worker.methods.map((method) => figures.method(corps, worker.name, method))
  }
}

/** One method's series, summed over the runtimes that made its calls (the `caller` and `env` attributes). */
interface MethodSeries {
  calls: number
  inFlight: number
  failures: Record<string, number>
  buckets: Array<[number, number]>
  count: number
  max: number
}

/** The figures of effect-corps' metrics in one registry snapshot, indexed for the tree. */
class Figures {
  private readonly methods = new Map<string, MethodSeries>()
  private readonly workers = new Map<string, { instances?: number; mailbox?: number }>()
  private readonly slots = new Map<string, SlotSeries>()

  static from(metrics: ReadonlyArray<Metric.Metric.Snapshot>): Figures {
    const figures = new Figures()
    for (const metric of metrics) {
      if (Metrics.isCorpsMetric(metric.id)) figures.add(metric)
    }
    return figures
  }

  private add(metric: Metric.Metric.Snapshot): void {
    const a = (metric.attributes ?? {}) as Record<string, string | undefined>
    const corps = a[Metrics.Attribute.corps] ?? ""
    const worker = a[Metrics.Attribute.worker] ?? ""
    switch (metric.id) {
      case Metrics.calls.name:
      case Metrics.failures.name:
      case Metrics.latency.name:
      case Metrics.inFlight.name: {
        const series = this.methodSeries(corps, worker, a[Metrics.Attribute.method] ?? "")
        if (metric.type === "Counter" && metric.id === Metrics.calls.name) series.calls += Number(metric.state.count)
        else if (metric.type === "Counter") {
          const tag = a[Metrics.Attribute.error] ?? "unknown"
          series.failures[tag] = (series.failures[tag] ?? 0) + Number(metric.state.count)
        } else if (metric.type === "Gauge") series.inFlight += Number(metric.state.value)
        else if (metric.type === "Histogram") {
          mergeBuckets(series.buckets, metric.state.buckets)
          series.count += metric.state.count
          if (metric.state.count > 0) series.max = Math.max(series.max, metric.state.max)
        }
        break
      }
      case Metrics.instances.name:
      case Metrics.mailbox.name: {
        if (metric.type !== "Gauge") break
        const key = `${corps}\u0000${worker}`
        const own = this.workers.get(key) ?? {}
        const field = metric.id === Metrics.instances.name ? "instances" : "mailbox"
        own[field] = (own[field] ?? 0) + Number(metric.state.value)
        this.workers.set(key, own)
        break
      }
      default: {
        const index = a[Metrics.Attribute.index]
        if (index === undefined) break
        const key = `${corps}\u0000${a[Metrics.Attribute.env] ?? ""}\u0000${index}`
        const slot = this.slots.get(key) ?? {}
        if (metric.type === "Gauge" || metric.type === "Counter") {
          const value = metric.type === "Counter" ? Number(metric.state.count) : Number(metric.state.value)
          if (metric.id === Metrics.slotState.name) {
            if (value === 1) slot.state = a[Metrics.Attribute.state] as SlotStats["state"]
          } else if (metric.id === Metrics.slotPid.name) slot.pid = value
          else if (metric.id === Metrics.slotThreadId.name) slot.threadId = value
          else if (metric.id === Metrics.slotUtilization.name) slot.utilization = value
          else if (metric.id === Metrics.slotHeapUsed.name) slot.heapUsed = value
          else if (metric.id === Metrics.slotRestarts.name) slot.restarts = value
        }
        this.slots.set(key, slot)
      }
    }
  }

  private methodSeries(corps: string, worker: string, method: string): MethodSeries {
    const key = `${corps}\u0000${worker}\u0000${method}`
    let series = this.methods.get(key)
    if (series === undefined) {
      series = { calls: 0, inFlight: 0, failures: {}, buckets: [], count: 0, max: 0 }
      this.methods.set(key, series)
    }
    return series
  }

  method(corps: string, worker: string, method: string): MethodStats {
    const series = this.methods.get(`${corps}\u0000${worker}\u0000${method}`)
    if (series === undefined) {
      return { method, calls: 0, failures: {}, inFlight: 0, latencyMillis: { p50: 0, p90: 0, p99: 0, max: 0 } }
    }
    return {
      method,
      calls: series.calls,
      failures: series.failures,
      inFlight: series.inFlight,
      latencyMillis: {
        p50: quantile(series, 0.5),
        p90: quantile(series, 0.9),
        p99: quantile(series, 0.99),
        max: series.max
      }
    }
  }

  worker(corps: string, worker: string): { readonly instances?: number; readonly mailbox?: number } {
    return this.workers.get(`${corps}\u0000${worker}`) ?? {}
  }

  slot(corps: string, env: string, index: number): SlotSeries {
    return this.slots.get(`${corps}\u0000${env}\u0000${index}`) ?? {}
  }
}

interface SlotSeries {
  state?: SlotStats["state"]
  pid?: number
  threadId?: number
  utilization?: number
  heapUsed?: number
  restarts?: number
}

/** Adds cumulative bucket counts of the same boundaries (every series of the latency histogram has them). */
const mergeBuckets = (into: Array<[number, number]>, from: ReadonlyArray<readonly [number, number]>): void => {
  for (let i = 0; i < from.length; i++) {
    const [boundary, count] = from[i]!
    const existing = into[i]
    if (existing === undefined) into.push([boundary, count])
    else existing[1] += count
  }
}

/**
 * The `q` quantile of a histogram, estimated by linear interpolation inside
 * the bucket it falls in (and capped by the largest value seen); 0 for no
 * calls.
 *
 * @since 0.3.0
 * @category figures
 */
export const quantile = (
  histogram: {
    readonly buckets: ReadonlyArray<readonly [number, number]>
    readonly count: number
    readonly max: number
  },
  q: number
): number => {
  if (histogram.count === 0) return 0
  const rank = q * histogram.count
  let lower = 0
  let below = 0
  for (const [boundary, cumulative] of histogram.buckets) {
    if (cumulative >= rank) {
      const inBucket = cumulative - below
      const share = inBucket === 0 ? 1 : (rank - below) / inBucket
      return Math.min(lower + (boundary - lower) * share, histogram.max)
    }
    lower = boundary
    below = cumulative
  }
  // Past the last boundary: the largest value seen is the best bound there is.
  return histogram.max
}

/**
 * The monitor of the Corps built below it: provide `Monitor.layer` (the
 * dashboard does) before building a Corps, and that Corps reports to it.
 *
 * @since 0.3.0
 * @category services
 */
export class Monitor extends Context.Service<Monitor, MonitorState>()("effect-corps/Monitor") {
  /**
   * A fresh Monitor.
   *
   * @since 0.3.0
   */
  static readonly layer: Layer.Layer<Monitor> = Layer.effect(
    Monitor,
    Effect.map(PubSub.sliding<CorpsEvent>(4096), (live) => new MonitorState(live))
  )
}

/**
 * Everything monitoring shows now: the Corps registered with the Monitor in
 * context, with the figures of the metric registry in context.
 *
 * @since 0.3.0
 * @category snapshots
 */
export const snapshot: Effect.Effect<Snapshot, never, Monitor> = Effect.gen(function* () {
  const monitor = yield* Monitor
  const metrics = yield* Metric.snapshot
  return monitor.snapshotWith(metrics, Date.now())
})

/**
 * Every event of the Corps registered with the Monitor in context, from now on.
 *
 * @since 0.3.0
 * @category snapshots
 */
export const events: Stream.Stream<CorpsEvent, never, Monitor> = Stream.unwrap(
  Effect.map(Effect.service(Monitor), (monitor) => Stream.fromPubSub(monitor.live))
)

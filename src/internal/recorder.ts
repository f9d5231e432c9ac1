/**
 * The figures monitoring keeps for one runtime (the caller's, or one Env's),
 * as plain counters that a call bumps with no lookup and no allocation; the
 * registry reads them only when it is read (`Metric.registerUnsafe` hooks),
 * so recording costs a few field writes per call.
 *
 * The caller's Recorder is attached to its `Metric.MetricRegistry` and
 * registers a series per (Worker, method, Env, calling Env). An Env's
 * Recorder is not attached to anything: the caller drains it about once a
 * second over the Env's link ({@link Recorder.drain}) and merges what it
 * answers ({@link Recorder.merge}), so one registry shows the whole Corps.
 *
 * A call is counted once, by the runtime that makes it (see
 * src/monitoring/metrics.ts): the caller's Recorder counts the calls its
 * handles make, an Env's counts those its own Workers make.
 */
import { Cause, type Context, Effect, type Exit, Metric } from "effect"
import * as Metrics from "../monitoring/metrics.ts"

const BOUNDS = Metrics.latencyBoundariesMillis
const BUCKETS = BOUNDS.length + 1

/**
 * Calls to another Env timed per tick and method, at most (about): below
 * 3,200 calls a second every call is timed, above it an even sample.
 */
export const TIMED_PER_TICK = 32

/** The clock metered calls are timed with (milliseconds). */
export const now = (): number => performance.now()

/** `Exit.isExit` without its generic `hasProperty`: this runs on every metered call's result. */
const isExit = (u: Effect.Effect<unknown, unknown>): u is Exit.Exit<unknown, unknown> => "~effect/Exit" in u

/** The counters of one (Worker, method, Env, calling Env). */
export class CallSeries {
  readonly worker: string
  readonly method: string
  readonly env: string
  readonly caller: string
  calls = 0
  /** Calls timed: the histogram's count (every call, or one per tick: see {@link timeAll}). */
  observed = 0
  inFlight = 0
  /** Calls in flight reported by each Env slot that calls from there (caller side only). */
  remoteInFlight: Map<string, number> | undefined = undefined
  readonly failures = new Map<string, number>()
  /** Observations per latency bucket (not cumulative); the last one is +Inf. */
  readonly buckets = new Float64Array(BUCKETS)
  sum = 0
  min = Number.POSITIVE_INFINITY
  max = Number.NEGATIVE_INFINITY
  /**
   * How calls are chosen to be timed (reading the clock costs ~45 ns here,
   * twice per timed call). `true` (calls to other Envs): every call while
   * fewer than {@link TIMED_PER_TICK} start in a tick of {@link ticks}, else
   * every n-th, n chosen each tick from the calls started in the one before,
   * so about that many a tick are timed, spread evenly over the calls.
   * `false` (FastPath calls, which cost less than one clock reading): only
   * the first call of each tick.
   */
  timeAll = true
  /** The tick in which the sampling below was last set (or, FastPath, a call was last timed). */
  lastTick = -1
  /** Calls started in tick {@link lastTick} (calls to other Envs). */
  private startedInTick = 0
  /** Time every `stride`-th call in this tick; the next one timed is `countdown` calls away. */
  private stride = 1
  private countdown = 0
  /** Set when attached to a registry: registers a failure tag's series the first time it is seen. */
  onNewTag: ((tag: string) => void) | undefined = undefined

  constructor(worker: string, method: string, env: string, caller: string) {
    this.worker = worker
    this.method = method
    this.env = env
    this.caller = caller
  }

  /** A timed call ended after `millis` with `exit`. */
  end(exit: Exit.Exit<unknown, unknown>, millis: number): void {
    this.inFlight--
    this.observe(millis)
    this.endNow(exit)
  }

  /**
   * An untimed call in flight ended with `exit`, as an `onExit` finalizer
   * made once per series: a call whose Target answers an Effect adds no
   * closure of its own.
   */
  readonly onUntimedExit = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> => {
    this.inFlight--
    this.endNow(exit)
    return Effect.void
  }

  /** A call that answered synchronously and was not timed: never seen in flight. */
  endNow(exit: Exit.Exit<unknown, unknown>): void {
    this.calls++
    if (exit._tag === "Failure") this.fail(failureTag(exit.cause), 1)
  }

  /**
   * Counts a timed call (already in flight, started at `start` by
   * {@link now}) whose Target answered `result`: at once when it is an Exit
   * (no Effect frame), else when it ends. Every metered call with a clock
   * reading ends here.
   */
  settle(result: Effect.Effect<unknown, unknown>, start: number): Effect.Effect<unknown, unknown> {
    if (isExit(result)) {
      this.end(result, now() - start)
      return result
    }
    return Effect.onExit(result, (exit) => {
      this.end(exit, now() - start)
      return Effect.void
    })
  }

  /**
   * Counts an untimed call whose Target answered `result`: at once when it
   * is an Exit, else in flight until it ends (with {@link onUntimedExit}:
   * no closure per call).
   */
  settleUntimed(result: Effect.Effect<unknown, unknown>): Effect.Effect<unknown, unknown> {
    if (isExit(result)) {
      this.endNow(result)
      return result
    }
    this.inFlight++
    return Effect.onExit(result, this.onUntimedExit)
  }

  /**
   * Begins a call of a Target that answers at once (a FastPath step): its
   * start ({@link now}, and it is in flight) when {@link timeThis} chooses
   * it, else `NaN`. End it with {@link finish}.
   */
  begin(): number {
    if (!this.timeThis()) return Number.NaN
    this.inFlight++
    return now()
  }

  /** Counts a call begun with {@link begin} whose Target answered `result`. */
  finish(result: Effect.Effect<unknown, unknown>, start: number): Effect.Effect<unknown, unknown> {
    return Number.isNaN(start) ? this.settleUntimed(result) : this.settle(result, start)
  }

  /** A call in flight whose caller was interrupted after `millis` (`NaN`: the call was not timed). */
  interrupted(millis: number): void {
    this.inFlight--
    this.calls++
    if (!Number.isNaN(millis)) this.observe(millis)
    this.fail("Interrupted", 1)
  }

  /**
   * Counts a call already in flight whose Target answered `result`: timed
   * from `start` as {@link settle}, or, when `start` is `NaN` (not chosen
   * by {@link timeThis}), only counted.
   */
  settleStarted(result: Effect.Effect<unknown, unknown>, start: number): Effect.Effect<unknown, unknown> {
    if (!Number.isNaN(start)) return this.settle(result, start)
    if (isExit(result)) {
      this.inFlight--
      this.endNow(result)
      return result
    }
    return Effect.onExit(result, this.onUntimedExit)
  }

  /** Whether to time the call starting now (see {@link timeAll}). */
  timeThis(): boolean {
    const tick = ticks.current
    if (!this.timeAll) {
      if (this.lastTick === tick) return false
      this.lastTick = tick
      return true
    }
    if (this.lastTick !== tick) {
      // After a quiet tick (or none at all) time every call again: a burst is seen from its first call.
      this.stride =
        this.lastTick === tick - 1 && this.startedInTick > TIMED_PER_TICK
          ? Math.floor(this.startedInTick / TIMED_PER_TICK)
          : 1
      this.lastTick = tick
      this.startedInTick = 0
      this.countdown = 0
    }
    this.startedInTick++
    if (--this.countdown > 0) return false
    this.countdown = this.stride
    return true
  }

  /** One latency observation (the histogram counts only these). */
  observe(millis: number): void {
    this.observed++
    this.sum += millis
    if (millis < this.min) this.min = millis
    if (millis > this.max) this.max = millis
    let i = 0
    while (i < BOUNDS.length && millis > BOUNDS[i]!) i++
    this.buckets[i]!++
  }

  fail(tag: string, count: number): void {
    const before = this.failures.get(tag)
    this.failures.set(tag, (before ?? 0) + count)
    if (before === undefined) this.onNewTag?.(tag)
  }

  /** All calls in flight: here, and in the Env slots that reported theirs. */
  get totalInFlight(): number {
    let total = this.inFlight
    if (this.remoteInFlight !== undefined) for (const n of this.remoteInFlight.values()) total += n
    return total
  }

  histogram(): Metric.HistogramState {
    const buckets: Array<[number, number]> = []
    let cumulated = 0
    for (let i = 0; i < BOUNDS.length; i++) {
      cumulated += this.buckets[i]!
      buckets.push([BOUNDS[i]!, cumulated])
    }
    return {
      buckets,
      count: this.observed,
      sum: this.sum,
      min: this.observed === 0 ? 0 : this.min,
      max: this.observed === 0 ? 0 : this.max
    }
  }
}

/** The error tag a failed call is counted under. */
export const failureTag = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some") {
    const value = error.value
    return typeof value === "object" && value !== null && typeof (value as any)._tag === "string"
      ? (value as any)._tag
      : "UnknownError"
  }
  return Cause.hasInterruptsOnly(cause) ? "Interrupted" : "Defect"
}

/** Live instances and waiting calls of one Worker in one runtime, read when asked. */
export interface WorkerGauges {
  readonly worker: string
  readonly env: string
  read(): { readonly instances: number; readonly mailbox: number }
}

/** What an Env's Recorder answers the caller: counts since its previous answer, gauges as they are. */
export interface Delta {
  /** {@link CallCounts} as plain data (it crosses the Env's link). */
  readonly calls: ReadonlyArray<
    Omit<CallCounts, "failures" | "buckets"> & {
      readonly failures: ReadonlyArray<readonly [string, number]>
      readonly buckets: ReadonlyArray<number>
    }
  >
  readonly workers: ReadonlyArray<{
    readonly worker: string
    readonly env: string
    readonly instances: number
    readonly mailbox: number
  }>
}

/** The counts of one series of calls, as a {@link CallSeries} or a runner's totals keep them. */
export interface CallCounts {
  readonly worker: string
  readonly method: string
  readonly env: string
  readonly calls: number
  readonly observed: number
  readonly inFlight: number
  readonly failures: ReadonlyMap<string, number>
  readonly buckets: Iterable<number>
  readonly sum: number
  readonly min: number
  readonly max: number
}

/** One row of a {@link Delta} (or of a runner's figures): `s` as it is now, copied. */
export const callRow = (s: CallCounts): Delta["calls"][number] => ({
  worker: s.worker,
  method: s.method,
  env: s.env,
  calls: s.calls,
  observed: s.observed,
  inFlight: s.inFlight,
  failures: [...s.failures],
  buckets: [...s.buckets],
  sum: s.sum,
  min: s.min,
  max: s.max
})

const noHooks = () => {}

/**
 * A tick every 10 ms while a monitored runtime is open: a FastPath series
 * times its first call of each tick, so a method called rarely has every
 * call timed and one called millions of times a second about a hundred; a
 * series of calls to another Env times about {@link TIMED_PER_TICK} a tick.
 */
export const ticks = { current: 0, users: 0, timer: undefined as ReturnType<typeof setInterval> | undefined }

/** Starts the ticks (shared by every monitored runtime of this thread); the answer stops them. */
export const startTicks = (): (() => void) => {
  if (ticks.users++ === 0) {
    ticks.timer = setInterval(() => ticks.current++, 10)
    // A timer of monitoring's must not keep a program alive.
    ticks.timer.unref?.()
  }
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    if (--ticks.users === 0) clearInterval(ticks.timer)
  }
}

/** The monitoring figures of one runtime. */
export class Recorder {
  /** The Corps' name, the `corps` attribute. */
  readonly corps: string
  /** The Env this runtime is (`local` for the caller): the `caller` attribute of the calls it makes. */
  readonly caller: string
  /** The caller's context holding its `Metric.MetricRegistry`; undefined in an Env. */
  private readonly registry: Context.Context<never> | undefined
  private readonly series = new Map<string, CallSeries>()
  private readonly gauges: Array<WorkerGauges> = []
  /** Gauges Env slots reported, by slot ("env#index") and then "worker\0env". */
  private readonly remoteGauges = new Map<string, Map<string, { instances: number; mailbox: number }>>()
  private readonly remoteGaugeSeries = new Set<string>()
  private readonly registrations: Array<Metric.Registration> = []

  private readonly stopTicks: () => void

  constructor(corps: string, caller: string, registry: Context.Context<never> | undefined) {
    this.corps = corps
    this.caller = caller
    this.registry = registry
    this.stopTicks = startTicks()
  }

  /** The series of calls this runtime makes to `worker.method` placed in `env` (made once per method). */
  callSeries(worker: string, method: string, env: string, caller: string = this.caller): CallSeries {
    const id = `${worker}\u0000${method}\u0000${env}\u0000${caller}`
    let series = this.series.get(id)
    if (series === undefined) {
      series = new CallSeries(worker, method, env, caller)
      this.series.set(id, series)
      if (this.registry !== undefined) this.registerCalls(series)
    }
    return series
  }

  /** Reports `gauges` (a Worker built in this runtime) from now on. */
  addWorker(gauges: WorkerGauges): void {
    this.gauges.push(gauges)
    if (this.registry !== undefined) {
      const attributes = this.workerAttributes(gauges.worker, gauges.env)
      this.register(Metrics.instances, attributes, () => ({ value: gauges.read().instances }))
      this.register(Metrics.mailbox, attributes, () => ({ value: gauges.read().mailbox }))
    }
  }

  /**
   * The Env side: every count since the previous drain (then reset), and
   * the gauges as they are now.
   */
  drain(): Delta {
    const calls: Array<Delta["calls"][number]> = []
    for (const s of this.series.values()) {
      if (s.calls === 0 && s.inFlight === 0 && s.failures.size === 0) continue
      calls.push(callRow(s))
      s.calls = 0
      s.observed = 0
      s.sum = 0
      s.min = Number.POSITIVE_INFINITY
      s.max = Number.NEGATIVE_INFINITY
      s.buckets.fill(0)
      s.failures.clear()
    }
    return {
      calls,
      workers: this.gauges.map((g) => ({ worker: g.worker, env: g.env, ...g.read() }))
    }
  }

  /** The caller side: adds what Env slot `slot` (of Env `env`) reported. */
  merge(env: string, slot: string, delta: Delta): void {
    // What this slot has in flight is what it reports now: series it no longer reports have nothing there.
    for (const s of this.series.values()) if (s.remoteInFlight?.has(slot)) s.remoteInFlight.set(slot, 0)
    for (const d of delta.calls) {
      const s = this.callSeries(d.worker, d.method, d.env, env)
      s.calls += d.calls
      s.observed += d.observed
      s.sum += d.sum
      if (d.min < s.min) s.min = d.min
      if (d.max > s.max) s.max = d.max
      for (let i = 0; i < BUCKETS; i++) s.buckets[i]! += d.buckets[i] ?? 0
      for (const [tag, n] of d.failures) s.fail(tag, n)
      ;(s.remoteInFlight ??= new Map()).set(slot, d.inFlight)
    }
    const gauges = new Map<string, { instances: number; mailbox: number }>()
    for (const w of delta.workers) {
      const id = `${w.worker}\u0000${w.env}`
      gauges.set(id, { instances: w.instances, mailbox: w.mailbox })
      if (this.registry !== undefined && !this.remoteGaugeSeries.has(id)) {
        this.remoteGaugeSeries.add(id)
        const attributes = this.workerAttributes(w.worker, w.env)
        this.register(Metrics.instances, attributes, () => ({ value: this.remoteGauge(id, "instances") }))
        this.register(Metrics.mailbox, attributes, () => ({ value: this.remoteGauge(id, "mailbox") }))
      }
    }
    this.remoteGauges.set(slot, gauges)
  }

  /** A slot's Env is gone: what it had in flight or alive is no more (its counts stay). */
  forgetSlot(slot: string): void {
    this.remoteGauges.delete(slot)
    for (const s of this.series.values()) s.remoteInFlight?.delete(slot)
  }

  private remoteGauge(id: string, field: "instances" | "mailbox"): number {
    let total = 0
    for (const gauges of this.remoteGauges.values()) total += gauges.get(id)?.[field] ?? 0
    return total
  }

  /** Registers a gauge of its own (the Env slots'), read through `get`; undone with the rest. */
  registerGauge(definition: Metrics.Definition, attributes: Record<string, string>, get: () => number): void {
    if (this.registry !== undefined) this.register(definition, attributes, () => ({ value: get() }))
  }

  /** Registers a counter of its own, read through `get`. */
  registerCounter(definition: Metrics.Definition, attributes: Record<string, string>, get: () => number): void {
    if (this.registry !== undefined) this.register(definition, attributes, () => ({ count: get(), incremental: true }))
  }

  /** Takes every series out of the registry (the Corps has closed). */
  close(): void {
    for (const registration of this.registrations) registration.remove()
    this.registrations.length = 0
    this.stopTicks()
  }

  private registerCalls(s: CallSeries): void {
    const attributes = {
      [Metrics.Attribute.corps]: this.corps,
      [Metrics.Attribute.worker]: s.worker,
      [Metrics.Attribute.method]: s.method,
      [Metrics.Attribute.env]: s.env,
      [Metrics.Attribute.caller]: s.caller
    }
    this.register(Metrics.calls, attributes, () => ({ count: s.calls, incremental: true }))
    this.register(Metrics.latency, attributes, () => s.histogram())
    this.register(Metrics.inFlight, attributes, () => ({ value: s.totalInFlight }))
    const registerTag = (tag: string) =>
      this.register(Metrics.failures, { ...attributes, [Metrics.Attribute.error]: tag }, () => ({
        count: s.failures.get(tag) ?? 0,
        incremental: true
      }))
    for (const tag of s.failures.keys()) registerTag(tag)
    s.onNewTag = registerTag
  }

  private workerAttributes(worker: string, env: string): Record<string, string> {
    return { [Metrics.Attribute.corps]: this.corps, [Metrics.Attribute.worker]: worker, [Metrics.Attribute.env]: env }
  }

  private register(definition: Metrics.Definition, attributes: Record<string, string>, get: () => unknown): void {
    const metric = Metrics.metricOf(definition, attributes)
    this.registrations.push(
      Metric.registerUnsafe(metric, this.registry!, { get: get as any, update: noHooks, modify: noHooks })
    )
  }
}

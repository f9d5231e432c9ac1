/**
 * Every metric effect-corps records, by name: its type, its attributes and
 * what it counts. This module is the one vocabulary the recorder
 * (src/monitoring/Recorder.ts), the Prometheus text, the dashboard and
 * `corps top` share; the names are stable (scrapers and dashboards depend
 * on them): add metrics, never rename one.
 *
 * All of them live in the caller's `Metric.MetricRegistry` (so
 * `Metric.snapshot` and `PrometheusMetrics.format()` see the whole Corps,
 * thread and process Envs included), and only while `Monitoring.layer` is
 * provided: without it nothing is registered.
 *
 * Attributes are low-cardinality on purpose: Corps name, Worker, method, Env
 * name and slot index — never an instance key, a call id or a pid as an
 * attribute (the pid is a gauge's value).
 *
 * Who counts a call: the runtime that MAKES it, at the handle (see
 * docs/monitoring.md, "Which side counts a call"). A call from the caller to
 * a thread Env is counted once, by the caller; a call a Worker in an Env
 * makes to another Worker (of the same Env or not) is counted once, by that
 * Env, and reaches the caller's registry through the Env's link.
 *
 * @since 0.3.0
 */
import { Metric } from "effect"

/**
 * Attribute names, shared by every metric that carries them.
 *
 * - `corps`: the Corps' name (`Corps.layer(…, { name })`; nested Corps are
 *   `outer/Inner`). Its id would be unique per run: too many series.
 * - `worker`, `method`: the contract's names.
 * - `env`: the Env the Worker is placed in (`local` for the caller's
 *   runtime), as named in the placement.
 * - `caller`: the Env whose runtime made the call (`local` for the caller).
 * - `index`: the slot of the Env (its thread or process), `"0"`, `"1"`…
 * - `error`: a failed call's error tag (`CallLost`, a declared error's tag,
 *   `WorkerDefect`, `Interrupted`…).
 * - `state`: one of {@link slotStates}.
 *
 * @since 0.3.0
 * @category attributes
 */
export const Attribute = {
  corps: "corps",
  worker: "worker",
  method: "method",
  env: "env",
  caller: "caller",
  index: "index",
  error: "error",
  state: "state"
} as const

/**
 * The bucket upper bounds of the call latency histogram, in milliseconds:
 * from 10 µs (a FastPath call) to 30 s, about three per decade.
 *
 * @since 0.3.0
 * @category boundaries
 */
export const latencyBoundariesMillis: ReadonlyArray<number> = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000
]

/**
 * The states of an Env slot, as `corps_env_slot_state{state}` reports them
 * (one series per state, 1 for the current one, 0 for the others), in the
 * order of `SlotState` in src/monitoring/Snapshot.ts.
 *
 * @since 0.3.0
 * @category attributes
 */
export const slotStates = ["starting", "serving", "restarting", "draining", "stopped"] as const

/**
 * The description of one metric: what the dashboard and the docs need to
 * read it from a `Metric.snapshot`.
 *
 * @since 0.3.0
 * @category models
 */
export interface Definition {
  readonly name: string
  readonly type: "Counter" | "Gauge" | "Histogram"
  readonly description: string
  /** The attributes every series of it carries. */
  readonly attributes: ReadonlyArray<string>
}

const define = (
  name: string,
  type: Definition["type"],
  attributes: ReadonlyArray<string>,
  description: string
): Definition => ({ name, type, attributes, description })

const callAttributes = [Attribute.corps, Attribute.worker, Attribute.method, Attribute.env, Attribute.caller]
const workerAttributes = [Attribute.corps, Attribute.worker, Attribute.env]
const slotAttributes = [Attribute.corps, Attribute.env, Attribute.index]

/**
 * Calls that ended (succeeded, failed or were interrupted), counted where
 * they were made.
 *
 * @since 0.3.0
 * @category per method
 */
export const calls = define(
  "corps_calls_total",
  "Counter",
  callAttributes,
  "Calls of a Worker method that ended (any outcome), counted by the runtime that made them"
)

/**
 * Calls that ended in a failure, by error tag (`error`): a declared error's
 * tag, an effect-corps error (`CallLost`, `MailboxFull`, `WorkerDefect`…),
 * or `Interrupted`.
 *
 * @since 0.3.0
 * @category per method
 */
export const failures = define(
  "corps_call_failures_total",
  "Counter",
  [...callAttributes, Attribute.error],
  "Calls of a Worker method that failed or were interrupted, by error tag"
)

/**
 * How long calls took, in milliseconds, from the call site (so a remote
 * call's time includes its trip), with {@link latencyBoundariesMillis}.
 *
 * @since 0.3.0
 * @category per method
 */
export const latency = define(
  "corps_call_duration_ms",
  "Histogram",
  callAttributes,
  "Duration of Worker method calls in milliseconds, measured where the call was made"
)

/**
 * Calls started and not yet ended.
 *
 * @since 0.3.0
 * @category per method
 */
export const inFlight = define(
  "corps_calls_in_flight",
  "Gauge",
  callAttributes,
  "Calls of a Worker method started and not yet ended"
)

/**
 * Live Conc instances (built, not yet closed) of a Worker in an Env; for a
 * Func, its replicas there (1 per runtime that built it).
 *
 * @since 0.3.0
 * @category per worker
 */
export const instances = define(
  "corps_worker_instances",
  "Gauge",
  workerAttributes,
  "Live instances of a Worker (Conc instances built and not closed; 1 per Func replica)"
)

/**
 * Calls waiting in the mailboxes of a Conc Worker's instances (not yet
 * running), summed over its instances in an Env.
 *
 * @since 0.3.0
 * @category per worker
 */
export const mailbox = define(
  "corps_worker_mailbox_depth",
  "Gauge",
  workerAttributes,
  "Calls waiting in the mailboxes of a Conc Worker's instances"
)

/**
 * The state of a thread or process of an Env: one series per state of
 * {@link slotStates}, 1 for the current state and 0 for the others.
 *
 * @since 0.3.0
 * @category per env
 */
export const slotState = define(
  "corps_env_slot_state",
  "Gauge",
  [...slotAttributes, Attribute.state],
  "State of an Env slot: 1 for its current state, 0 for the others"
)

/**
 * The pid of the process that runs an Env slot.
 *
 * @since 0.3.0
 * @category per env
 */
export const slotPid = define("corps_env_slot_pid", "Gauge", slotAttributes, "Pid of the process running an Env slot")

/**
 * The Node thread id of an Env slot (0 for a process' main thread).
 *
 * @since 0.3.0
 * @category per env
 */
export const slotThreadId = define(
  "corps_env_slot_thread_id",
  "Gauge",
  slotAttributes,
  "Node thread id running an Env slot (0 for a process' main thread)"
)

/**
 * Event-loop utilisation of an Env slot (0 to 1) over the last sampling
 * window (about a second).
 *
 * @since 0.3.0
 * @category per env
 */
export const slotUtilization = define(
  "corps_env_slot_utilization",
  "Gauge",
  slotAttributes,
  "Event-loop utilisation of an Env slot, 0 to 1, over the last second"
)

/**
 * V8 heap in use by an Env slot's isolate, in bytes.
 *
 * @since 0.3.0
 * @category per env
 */
export const slotHeapUsed = define(
  "corps_env_slot_heap_used_bytes",
  "Gauge",
  slotAttributes,
  "V8 heap used by an Env slot's isolate, in bytes"
)

/**
 * Calls from the caller in flight on an Env slot.
 *
 * @since 0.3.0
 * @category per env
 */
export const slotInFlight = define(
  "corps_env_slot_in_flight",
  "Gauge",
  slotAttributes,
  "Calls from the caller in flight on an Env slot"
)

/**
 * Times an Env slot was restarted by its supervisor.
 *
 * @since 0.3.0
 * @category per env
 */
export const slotRestarts = define(
  "corps_env_slot_restarts_total",
  "Counter",
  slotAttributes,
  "Times an Env slot was restarted after it died or stopped answering"
)

/**
 * Every metric effect-corps records.
 *
 * @since 0.3.0
 * @category definitions
 */
export const all: ReadonlyArray<Definition> = [
  calls,
  failures,
  latency,
  inFlight,
  instances,
  mailbox,
  slotState,
  slotPid,
  slotThreadId,
  slotUtilization,
  slotHeapUsed,
  slotInFlight,
  slotRestarts
]

/**
 * Whether a metric id is one of effect-corps' (to pick them out of a
 * `Metric.snapshot` that holds the application's own metrics too).
 *
 * @since 0.3.0
 * @category guards
 */
export const isCorpsMetric = (id: string): boolean => names.has(id)

const names = new Set(all.map((definition) => definition.name))

/**
 * The effect `Metric` of a definition with one series' attributes, e.g. to
 * read one series with `Metric.value`, or to register a series read on
 * demand (`Metric.registerUnsafe`, as the recorder does).
 *
 * @since 0.3.0
 * @category constructors
 */
export const metricOf = (
  definition: Definition,
  attributes: Readonly<Record<string, string>>
): Metric.Metric<number, unknown> => {
  const options = { description: definition.description, attributes }
  switch (definition.type) {
    case "Counter":
      return Metric.counter(definition.name, options) as Metric.Metric<number, unknown>
    case "Gauge":
      return Metric.gauge(definition.name, options) as Metric.Metric<number, unknown>
    case "Histogram":
      return Metric.histogram(definition.name, { ...options, boundaries: latencyBoundariesMillis })
  }
}

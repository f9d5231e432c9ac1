/**
 * What monitoring shows of a running Corps, as one Schema-typed value: the
 * Corps tree with its Workers, their methods' figures and the Envs they run
 * in, plus recent events. Every view reads this one shape — the dashboard's
 * JSON and SSE, `corps status --json`, `corps top` — so they always agree,
 * and a remote view decodes exactly what a local one holds.
 *
 * Figures are cumulative since the Corps started (calls, failures, restarts)
 * or current (in flight, instances, utilisation); rates are for the reader
 * to derive from two snapshots (`at` says when each was taken).
 *
 * @since 0.3.0
 */
import { Schema } from "effect"
import { CorpsEvent } from "../CorpsEvent.ts"

const Count = Schema.Number

/**
 * Latency of a method's calls, in milliseconds, from its histogram
 * (percentiles are estimates within a bucket).
 *
 * @since 0.3.0
 * @category schemas
 */
export const Latency = Schema.Struct({
  p50: Schema.Number,
  p90: Schema.Number,
  p99: Schema.Number,
  max: Schema.Number
})

/**
 * The figures of one method of one Worker, across every Env it runs in.
 *
 * @since 0.3.0
 * @category schemas
 */
export const MethodStats = Schema.Struct({
  method: Schema.String,
  calls: Count,
  /** Failed calls by error tag (`CallLost`, a declared error's tag, `WorkerDefect`…). */
  failures: Schema.Record(Schema.String, Count),
  inFlight: Count,
  latencyMillis: Latency
})

/**
 * One Worker: where it is placed and how its methods fare.
 *
 * @since 0.3.0
 * @category schemas
 */
export const WorkerStats = Schema.Struct({
  name: Schema.String,
  kind: Schema.Literals(["func", "conc", "corps"]),
  /** The Env name it is placed in (`local` for the caller's runtime). */
  env: Schema.String,
  /** Live Conc instances (built and not passivated); replicas for a Func. */
  instances: Count,
  /** Calls waiting in Conc mailboxes. */
  mailbox: Count,
  methods: Schema.Array(MethodStats)
})

/**
 * The state of one thread or process of an Env.
 *
 * @since 0.3.0
 * @category schemas
 */
export const SlotState = Schema.Literals(["starting", "serving", "restarting", "draining", "stopped"])

/**
 * One thread or process of an Env, or one runner of a cluster Env: what runs it and how busy it is.
 *
 * @since 0.3.0
 * @category schemas
 */
export const SlotStats = Schema.Struct({
  index: Schema.Number,
  state: SlotState,
  /** Why it stopped, or what it last restarted from. */
  reason: Schema.optional(Schema.String),
  pid: Schema.optional(Schema.Number),
  threadId: Schema.optional(Schema.Number),
  /** Event-loop utilisation, 0 to 1, over the last sampling window. */
  utilization: Schema.optional(Schema.Number),
  heapUsed: Schema.optional(Schema.Number),
  /** A cluster runner's address (`host:port`), from 0.4.0. */
  address: Schema.optional(Schema.String),
  /** The host name of the machine a cluster runner runs on, from 0.4.0. */
  host: Schema.optional(Schema.String),
  /** Calls from the caller in flight on it. */
  inFlight: Count,
  restarts: Count
})

/**
 * One Env of the placement and its threads or processes; for a scaling Env,
 * the range it moves in.
 *
 * @since 0.3.0
 * @category schemas
 */
export const EnvStats = Schema.Struct({
  name: Schema.String,
  kind: Schema.Literals(["local", "thread", "process", "host", "cluster"]),
  size: Count,
  min: Schema.optional(Count),
  max: Schema.optional(Count),
  slots: Schema.Array(SlotStats)
})

/**
 * A Corps and the Corps nested in it.
 *
 * @since 0.3.0
 * @category schemas
 */
export interface CorpsStats {
  readonly id: string
  readonly name: string
  readonly workers: ReadonlyArray<typeof WorkerStats.Type>
  readonly envs: ReadonlyArray<typeof EnvStats.Type>
  readonly children: ReadonlyArray<CorpsStats>
}

/**
 * The Schema of {@link CorpsStats}.
 *
 * @since 0.3.0
 * @category schemas
 */
export const CorpsStats: Schema.Codec<CorpsStats> = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  workers: Schema.Array(WorkerStats),
  envs: Schema.Array(EnvStats),
  children: Schema.Array(Schema.suspend((): Schema.Codec<CorpsStats> => CorpsStats))
})

/**
 * Everything monitoring shows at one moment.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Snapshot = Schema.Struct({
  /** Epoch milliseconds when it was taken. */
  at: Schema.Number,
  corps: CorpsStats,
  /** The most recent events, oldest first (supervision, scaling, passivation…). */
  events: Schema.Array(CorpsEvent)
})

/**
 * Everything monitoring shows at one moment.
 *
 * @since 0.3.0
 * @category models
 */
export type Snapshot = typeof Snapshot.Type

/**
 * Envs: where Workers live. An Env is plain data — a kind and its settings —
 * named in a Placement; code never changes between Envs.
 *
 * | kind      | runs Workers in                       |
 * | --------- | ------------------------------------- |
 * | `local`   | the caller's own runtime (FastPath)   |
 * | `thread`  | worker threads of this process        |
 * | `process` | child processes of this process       |
 * | `host`    | processes of `corps host` daemons     |
 * | `cluster` | `effect/cluster` runners, sharded     |
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { parseAddress } from "./internal/address.ts"
import * as Scaling from "./Scaling.ts"
import * as Supervision from "./Supervision.ts"

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/**
 * A range of sizes for an Env that scales with its load (docs/scaling.md):
 * it starts with `min` threads or processes and grows up to `max`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Range = Schema.Struct({ min: Count, max: Count }).check(
  Schema.makeFilter(({ min, max }) => min <= max || `min (${min}) must not be above max (${max})`)
)

/**
 * The size of a thread or process Env: a fixed count, a {@link Range}, or
 * `"auto"` (1 to the available cores, scaling).
 *
 * @since 0.3.0
 * @category schemas
 */
export const Size = Schema.Union([Count, Range, Schema.Literal("auto")])
const Megabytes = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/**
 * What supervises each thread or process of an Env (docs/supervision.md):
 * its restart policy, a warm spare, and the health checks that replace it.
 */
const health = {
  /** The Env's supervision policy (restart backoff, intensity limit, outcome). */
  supervision: Schema.optional(Supervision.Policy),
  /**
   * Replace a thread or process whose event loop does not answer a heartbeat
   * within this many milliseconds (it is killed and counts as a crash with
   * reason `"hang"`). Off when absent: a handler may legitimately compute
   * for a long time.
   */
  hangTimeoutMillis: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(10))),
  /** Keep one started spare ready to take over a crashed one at once (default `true`). */
  spare: Schema.optional(Schema.Boolean),
  /** How a scaling Env (`count` a range or `"auto"`) follows its load (docs/scaling.md; since 0.3.0). */
  scaling: Schema.optional(Scaling.Policy)
}

/**
 * Memory limits of a worker thread, as Node's `resourceLimits`: a thread
 * that passes them is replaced (reason `"memory"`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const ResourceLimits = Schema.Struct({
  maxOldGenerationSizeMb: Schema.optional(Megabytes),
  maxYoungGenerationSizeMb: Schema.optional(Megabytes),
  codeRangeSizeMb: Schema.optional(Megabytes),
  stackSizeMb: Schema.optional(Megabytes)
})

/**
 * The caller's own runtime: no serialization, no fiber hand-off.
 * `checkSerialization` round-trips every payload, result and error through
 * its Schema, so what works locally is known to cross an Env.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Local = Schema.Struct({
  kind: Schema.Literal("local"),
  checkSerialization: Schema.optional(Schema.Boolean)
})

/**
 * Worker threads of this process; `count` defaults to the available cores.
 * `supervision`, `hangTimeoutMillis`, `spare` and `resourceLimits` (since
 * 0.2.0) say how each thread is kept healthy (docs/supervision.md). Since
 * 0.3.0 `count` may be a range `{ min, max }` or `"auto"`, and `scaling`
 * sets how the Env follows its load (docs/scaling.md).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Thread = Schema.Struct({
  kind: Schema.Literal("thread"),
  count: Schema.optional(Size),
  ...health,
  resourceLimits: Schema.optional(ResourceLimits)
})

/**
 * Child processes of this process; `count` defaults to the available cores.
 * `supervision`, `hangTimeoutMillis`, `spare` and `maxOldSpaceSizeMb` (since
 * 0.2.0) say how each process is kept healthy (docs/supervision.md). Since
 * 0.3.0 `count` may be a range `{ min, max }` or `"auto"`, and `scaling`
 * sets how the Env follows its load (docs/scaling.md).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Process = Schema.Struct({
  kind: Schema.Literal("process"),
  count: Schema.optional(Size),
  ...health,
  /** The V8 old-space limit of each process (`--max-old-space-size`): one that passes it is replaced (reason `"memory"`). */
  maxOldSpaceSizeMb: Schema.optional(Megabytes)
})

const Address = Schema.String.check(
  Schema.makeFilter(
    (address) => parseAddress(address) !== undefined || `"${address}" is not host:port (a port from 1 to 65535)`
  )
)

/**
 * Processes started by `corps host` daemons on other machines
 * (docs/hosts.md): `hosts` are the daemons' `host:port` addresses, and the
 * Env's `count` processes (default one per host) are spread over them round
 * robin. The caller proves the shared secret of the daemons, read from the
 * file `secretFile` or from `CORPS_HOST_SECRET`; `tls` speaks TLS to them,
 * checking their certificate against the CA file `tls.ca`. A link that
 * hears nothing from its host for `heartbeatTimeoutMillis` (default 15000)
 * is closed: its calls end by their rules (re-sent when idempotent, else
 * `CallLost`) and the slot is dialled again under the Env's `supervision`.
 * Since 0.4.0 (before, a placeholder with `address` that no provider served).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Host = Schema.Struct({
  kind: Schema.Literal("host"),
  hosts: Schema.NonEmptyArray(Address),
  count: Schema.optional(Count),
  secretFile: Schema.optional(Schema.String),
  tls: Schema.optional(Schema.Struct({ ca: Schema.optional(Schema.String) })),
  /** A ping is sent on an idle link every this many milliseconds (default 1000). */
  heartbeatMillis: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(10))),
  /** A link silent this long is closed (default 15000): a host's handler that blocks its event loop longer needs more. */
  heartbeatTimeoutMillis: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(20))),
  /** How long connecting to a daemon and starting the Env's process may take (default 10000). */
  connectTimeoutMillis: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /**
   * Ship the program to the daemons (default `true`): the files its module
   * reaches through relative imports, cached there by hash (docs/hosts.md).
   * `false`: each daemon imports the module's URL as is (a shared file system).
   */
  ship: Schema.optional(Schema.Boolean),
  /** Largest batch accepted on the link, in bytes (default 64 MiB). */
  maxFrameBytes: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1024))),
  supervision: health.supervision,
  hangTimeoutMillis: health.hangTimeoutMillis,
  /** Keep one started spare (on the first host) ready to take over (default `false`: it holds a remote process). */
  spare: health.spare,
  maxOldSpaceSizeMb: Schema.optional(Megabytes)
})

/**
 * The runners of an `effect/cluster` deployment.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Cluster = Schema.Struct({
  kind: Schema.Literal("cluster"),
  storage: Schema.optional(Schema.Literals(["sql", "local"]))
})

/**
 * Any Env, as it appears in a placement.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Env = Schema.Union([Local, Thread, Process, Host, Cluster])

/**
 * Any Env.
 *
 * @since 0.1.0
 * @category models
 */
export type Env = typeof Env.Type

/**
 * The kinds of Env.
 *
 * @since 0.1.0
 * @category models
 */
export type Kind = Env["kind"]

/**
 * The caller's own runtime.
 *
 * @since 0.1.0
 * @category constructors
 */
export const local = (options?: { readonly checkSerialization?: boolean | undefined }): Env =>
  options?.checkSerialization === undefined
    ? { kind: "local" }
    : { kind: "local", checkSerialization: options.checkSerialization }

/** Drops the options left undefined (placements are exact: an undefined key is not a key). */
const defined = <A extends object>(options: A | undefined): A =>
  Object.fromEntries(Object.entries(options ?? {}).filter(([, value]) => value !== undefined)) as A

/**
 * Worker threads; the health options (since 0.2.0) are those of the
 * placement (docs/supervision.md).
 *
 * @example
 * ```ts
 * const cpu = Env.thread({ count: 4, hangTimeoutMillis: 5000, supervision: Supervision.policy({ outcome: "stop" }) })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const thread = (options?: Partial<Omit<typeof Thread.Type, "kind">> | undefined): Env => ({
  kind: "thread",
  ...defined(options)
})

/**
 * Child processes; the health options (since 0.2.0) are those of the
 * placement (docs/supervision.md).
 *
 * @since 0.1.0
 * @category constructors
 */
export const process = (options?: Partial<Omit<typeof Process.Type, "kind">> | undefined): Env => ({
  kind: "process",
  ...defined(options)
})

/**
 * Processes of `corps host` daemons (docs/hosts.md).
 *
 * @example
 * ```ts
 * const remote = Env.host({ hosts: ["10.0.0.2:7400", "10.0.0.3:7400"], count: 4 })
 * ```
 *
 * @since 0.4.0
 * @category constructors
 */
export const host = (options: Omit<typeof Host.Type, "kind">): Env => ({
  kind: "host",
  ...defined(options)
})

/**
 * The sizes a thread or process Env may take: `min === max` for a fixed
 * count. `cores` is the machine's available parallelism, the default count
 * and the top of `"auto"`.
 *
 * @since 0.3.0
 * @category resolving
 */
export const boundsOf = (count: typeof Size.Type | undefined, cores: number): Scaling.Bounds => {
  if (count === undefined) return { min: cores, max: cores }
  if (count === "auto") return { min: 1, max: Math.max(1, cores) }
  if (typeof count === "number") return { min: count, max: count }
  return count
}

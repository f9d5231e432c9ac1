/**
 * Envs: where Workers live. An Env is plain data — a kind and its settings —
 * named in a Placement; code never changes between Envs.
 *
 * | kind      | runs Workers in                       |
 * | --------- | ------------------------------------- |
 * | `local`   | the caller's own runtime (FastPath)   |
 * | `thread`  | worker threads of this process        |
 * | `process` | child processes of this process       |
 * | `host`    | runner processes on other hosts       |
 * | `cluster` | `effect/cluster` runners, sharded     |
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

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
 *
 * @since 0.1.0
 * @category schemas
 */
export const Thread = Schema.Struct({
  kind: Schema.Literal("thread"),
  count: Schema.optional(Count)
})

/**
 * Child processes of this process; `count` defaults to the available cores.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Process = Schema.Struct({
  kind: Schema.Literal("process"),
  count: Schema.optional(Count)
})

/**
 * Runner processes on other hosts, reached at `address` (`host:port`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Host = Schema.Struct({
  kind: Schema.Literal("host"),
  address: Schema.String
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

/**
 * Worker threads.
 *
 * @since 0.1.0
 * @category constructors
 */
export const thread = (options?: { readonly count?: number | undefined }): Env =>
  options?.count === undefined ? { kind: "thread" } : { kind: "thread", count: options.count }

/**
 * Child processes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const process = (options?: { readonly count?: number | undefined }): Env =>
  options?.count === undefined ? { kind: "process" } : { kind: "process", count: options.count }

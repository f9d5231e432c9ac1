/**
 * What a running Corps reports about itself: one typed event for each thing
 * its runtime does on its own (an Env starts, crashes, is restarted or given
 * up on; a call is sent again or quarantined; an instance is rebuilt or
 * passivated). The
 * events are Schemas, so they can cross Envs and be shown by monitoring.
 *
 * ```ts
 * import { Corps } from "effect-corps"
 *
 * const watch = Corps.events.pipe(Stream.runForEach((event) => Effect.log(event._tag)))
 * ```
 *
 * @since 0.2.0
 */
import { Schema } from "effect"

const common = {
  /** The Corps' id. */
  corps: Schema.String,
  /** When it happened, in epoch milliseconds. */
  at: Schema.Number
}

/**
 * A thread or process of an Env is serving.
 *
 * @since 0.2.0
 * @category events
 */
export const EnvStarted = Schema.TaggedStruct("EnvStarted", {
  ...common,
  env: Schema.String,
  index: Schema.Number,
  /** A restart's attempt number; 0 at the Corps' start. */
  attempt: Schema.Number
})

/**
 * A warm spare of an Env is started and ready to take over the next lost
 * thread or process of it at once.
 *
 * @since 0.2.0
 * @category events
 */
export const SpareReady = Schema.TaggedStruct("SpareReady", {
  ...common,
  env: Schema.String
})

/**
 * Why an Env was found unhealthy.
 *
 * @since 0.2.0
 * @category models
 */
export const CrashReason = Schema.Literals(["crashed", "exited", "memory", "hang"])

/**
 * A thread or process of an Env was lost (its calls in flight are re-sent or
 * fail with `CallLost`).
 *
 * @since 0.2.0
 * @category events
 */
export const EnvCrashed = Schema.TaggedStruct("EnvCrashed", {
  ...common,
  env: Schema.String,
  index: Schema.Number,
  reason: CrashReason,
  detail: Schema.String
})

/**
 * A lost Env will be started again after `delayMillis`.
 *
 * @since 0.2.0
 * @category events
 */
export const EnvRestarting = Schema.TaggedStruct("EnvRestarting", {
  ...common,
  env: Schema.String,
  index: Schema.Number,
  attempt: Schema.Number,
  delayMillis: Schema.Number
})

/**
 * An Env (or a Worker) was given up on: its supervision policy's intensity
 * limit was reached, and its outcome (`stop` or `escalate`) applied.
 *
 * @since 0.2.0
 * @category events
 */
export const SupervisionExhausted = Schema.TaggedStruct("SupervisionExhausted", {
  ...common,
  env: Schema.optional(Schema.String),
  worker: Schema.optional(Schema.String),
  outcome: Schema.Literals(["stop", "escalate"]),
  restarts: Schema.Number,
  withinMillis: Schema.Number,
  detail: Schema.String
})

/**
 * A call lost with its Env was sent again (an `idempotent` method).
 *
 * @since 0.2.0
 * @category events
 */
export const CallRedelivered = Schema.TaggedStruct("CallRedelivered", {
  ...common,
  worker: Schema.String,
  method: Schema.String,
  attempt: Schema.Number
})

/**
 * A call that took down its Env too many times is never sent again.
 *
 * @since 0.2.0
 * @category events
 */
export const CallQuarantined = Schema.TaggedStruct("CallQuarantined", {
  ...common,
  worker: Schema.String,
  method: Schema.String,
  crashes: Schema.Number
})

/**
 * A Conc instance was rebuilt with fresh state (`onDefect: "restart"`).
 *
 * @since 0.2.0
 * @category events
 */
export const InstanceRestarted = Schema.TaggedStruct("InstanceRestarted", {
  ...common,
  worker: Schema.String,
  key: Schema.String,
  detail: Schema.String
})

/**
 * What one Env looked like when a scaling decision was made.
 *
 * @since 0.3.0
 * @category models
 */
export const ScalingSample = Schema.Struct({
  index: Schema.Number,
  inFlight: Schema.Number,
  /** Event-loop utilisation since the previous sample; absent when the Env did not answer in time. */
  utilization: Schema.optional(Schema.Number)
})

/**
 * A scaling Env changes size: `from` → `to` Envs in service, with the
 * reason and the samples that decided it (docs/scaling.md). Growing Envs
 * start (`EnvStarted`) or come back from draining; shrinking ones drain,
 * then are removed (`EnvRemoved`).
 *
 * @since 0.3.0
 * @category events
 */
export const EnvScaled = Schema.TaggedStruct("EnvScaled", {
  ...common,
  env: Schema.String,
  from: Schema.Number,
  to: Schema.Number,
  direction: Schema.Literals(["up", "down"]),
  reason: Schema.String,
  samples: Schema.Array(ScalingSample)
})

/**
 * A drained thread or process of a scaling Env was stopped (`reason`
 * `"drained"`), or was lost while draining and is not restarted.
 *
 * @since 0.3.0
 * @category events
 */
export const EnvRemoved = Schema.TaggedStruct("EnvRemoved", {
  ...common,
  env: Schema.String,
  index: Schema.Number,
  reason: Schema.String
})

/**
 * A Conc instance was passivated: idle for its Worker's `passivateAfter`
 * (`idleMillis` is the least time it had been idle), or retired from an Env
 * being drained (no `idleMillis`). Its finalizers ran and it left memory;
 * the next call to its key builds it again (a persisted one resumes its
 * state). `env` names the thread or process Env it lived in (`<name>#<index>`),
 * absent in the caller's runtime.
 *
 * @since 0.3.0
 * @category events
 */
export const InstancePassivated = Schema.TaggedStruct("InstancePassivated", {
  ...common,
  worker: Schema.String,
  key: Schema.String,
  env: Schema.optional(Schema.String),
  idleMillis: Schema.optional(Schema.Number)
})

/**
 * Every event a Corps reports.
 *
 * @since 0.2.0
 * @category models
 */
export const CorpsEvent = Schema.Union([
  EnvStarted,
  SpareReady,
  EnvCrashed,
  EnvRestarting,
  SupervisionExhausted,
  CallRedelivered,
  CallQuarantined,
  InstanceRestarted,
  EnvScaled,
  EnvRemoved,
  InstancePassivated
])

/**
 * @since 0.2.0
 * @category models
 */
export type CorpsEvent = typeof CorpsEvent.Type

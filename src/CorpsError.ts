/**
 * Every failure effect-corps itself can raise, as Schema tagged errors.
 *
 * They are Schema classes because they cross threads, processes and hosts:
 * a caller in one Env receives the very same tag that was raised in another.
 * `docs/errors.md` lists each tag, what it means and what the caller can do.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A handler died (threw, or used `Effect.die`) instead of succeeding or
 * failing with one of its declared errors. The Worker keeps serving: the call
 * that died is not replayed.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerDefect extends Schema.TaggedError<WorkerDefect>()("WorkerDefect", {
  worker: Schema.String,
  method: Schema.String,
  defect: Schema.Defect()
}) {
  override get message(): string {
    return `${this.worker}.${this.method} died: ${describeDefect(this.defect)}`
  }
}

/**
 * A Conc instance's mailbox was full and its policy is `"fail"`.
 * The call was not run; the caller may retry later.
 *
 * Its tag is `CorpsMailboxFull` (since 0.2.0; `MailboxFull` before), so that
 * `Effect.catchTag` never confuses it with effect/cluster's own `MailboxFull`.
 *
 * @since 0.1.0
 * @category errors
 */
export class MailboxFull extends Schema.TaggedError<MailboxFull>()("CorpsMailboxFull", {
  worker: Schema.String,
  key: Schema.String,
  capacity: Schema.Number
}) {
  override get message(): string {
    return `the mailbox of ${this.worker}[${this.key}] is full (${this.capacity} calls waiting)`
  }
}

/**
 * A call named a Worker that no Corps in reach serves (a stale handle, or a
 * handle decoded in an Env that does not know its Corps).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownWorker extends Schema.TaggedError<UnknownWorker>()("UnknownWorker", {
  worker: Schema.String,
  corps: Schema.String
}) {
  override get message(): string {
    return `no Worker named ${this.worker} is served by Corps ${this.corps}`
  }
}

/**
 * A call named a method that the Worker's contract does not declare.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownMethod extends Schema.TaggedError<UnknownMethod>()("UnknownMethod", {
  worker: Schema.String,
  method: Schema.String
}) {
  override get message(): string {
    return `${this.worker} has no method ${this.method}`
  }
}

/**
 * A value could not be encoded or decoded by its Schema on its way across an
 * Env boundary (or through the local serialization check). `part` says which
 * value: the payload, the success value or the error.
 *
 * @since 0.1.0
 * @category errors
 */
export class SerializationError extends Schema.TaggedError<SerializationError>()("SerializationError", {
  worker: Schema.String,
  method: Schema.String,
  part: Schema.Literals(["payload", "success", "error"]),
  issue: Schema.String
}) {
  override get message(): string {
    return `${this.worker}.${this.method}: the ${this.part} does not fit its Schema: ${this.issue}`
  }
}

/**
 * The Env that ran the call was lost (crashed, killed or shut down) before the
 * call completed. `mayHaveRun` says whether the call may have taken effect:
 * `true` when it was sent and never answered, `false` when it never left the
 * caller (its Env was already down); absent when the Env cannot tell (the
 * cluster, or a peer older than 0.2.0). In thread and process Envs a method
 * declared `idempotent: true` is sent again instead (docs/redelivery.md), so
 * its caller sees `CallLost` only once its retry policy is exhausted.
 *
 * @since 0.1.0
 * @category errors
 */
export class CallLost extends Schema.TaggedError<CallLost>()("CallLost", {
  worker: Schema.String,
  method: Schema.String,
  env: Schema.String,
  reason: Schema.String,
  /** @since 0.2.0 */
  mayHaveRun: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    const ran = this.mayHaveRun === undefined ? "" : this.mayHaveRun ? " (it may have run)" : " (it did not run)"
    return `${this.worker}.${this.method} was lost with Env ${this.env}: ${this.reason}${ran}`
  }
}

/**
 * The Corps is shutting down (or has been closed) and accepts no new calls.
 *
 * @since 0.1.0
 * @category errors
 */
export class CorpsClosed extends Schema.TaggedError<CorpsClosed>()("CorpsClosed", {
  corps: Schema.String
}) {
  override get message(): string {
    return `Corps ${this.corps} is closed`
  }
}

/**
 * The placement configuration is invalid. `key` is the path of the bad entry
 * (for example `workers.Counter.env`), `reason` says what is wrong with it.
 *
 * @since 0.1.0
 * @category errors
 */
export class PlacementError extends Schema.TaggedError<PlacementError>()("PlacementError", {
  key: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid placement at ${this.key}: ${this.reason}`
  }
}

/**
 * An Env could not be started: its module failed to load, or the Worker it
 * should build failed while being built.
 *
 * @since 0.1.0
 * @category errors
 */
export class EnvStartError extends Schema.TaggedError<EnvStartError>()("EnvStartError", {
  env: Schema.String,
  module: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Env ${this.env} could not start from ${this.module}: ${this.reason}`
  }
}

/**
 * The Worker was stopped by its supervision policy (outcome `"stop"`): the
 * Env it lives in kept failing past the policy's intensity limit. Every
 * later call fails at once with this error; the Worker does not come back
 * while its Corps runs.
 *
 * @since 0.2.0
 * @category errors
 */
export class WorkerStopped extends Schema.TaggedError<WorkerStopped>()("WorkerStopped", {
  worker: Schema.String,
  env: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.worker} was stopped (Env ${this.env}): ${this.reason}`
  }
}

/**
 * The Corps failed: an Env's supervision policy was exhausted with outcome
 * `"escalate"` and no enclosing supervisor took the failure over. Every later
 * call to the Corps' thread and process Envs fails at once with this error.
 *
 * @since 0.2.0
 * @category errors
 */
export class CorpsFailed extends Schema.TaggedError<CorpsFailed>()("CorpsFailed", {
  corps: Schema.String,
  env: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Corps ${this.corps} failed (Env ${this.env} escalated): ${this.reason}`
  }
}

/**
 * A call of an `idempotent` method took down the Env that ran it `crashes`
 * times (its method's `quarantineAfter`, 2 by default): it is quarantined and
 * never sent again, so one bad payload cannot crash a pool over and over.
 * The Envs it took down are restarted and keep serving other calls.
 *
 * @since 0.2.0
 * @category errors
 */
export class PoisonCall extends Schema.TaggedError<PoisonCall>()("PoisonCall", {
  worker: Schema.String,
  method: Schema.String,
  crashes: Schema.Number,
  /** Why the Env was lost the last time (`thread exited with code 1`, …). */
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.worker}.${this.method} took down its Env ${this.crashes} times and is quarantined: ${this.reason}`
  }
}

/**
 * The errors any call through a handle can fail with, beside the method's own
 * declared errors.
 *
 * @since 0.1.0
 * @category models
 */
export type CallError =
  | WorkerDefect
  | MailboxFull
  | UnknownWorker
  | UnknownMethod
  | SerializationError
  | CallLost
  | CorpsClosed
  | WorkerStopped
  | CorpsFailed
  | PoisonCall

/**
 * The Schema of {@link CallError}, used to carry call errors across Envs.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CallError: Schema.Codec<CallError, unknown> = Schema.Union([
  WorkerDefect,
  MailboxFull,
  UnknownWorker,
  UnknownMethod,
  SerializationError,
  CallLost,
  CorpsClosed,
  WorkerStopped,
  CorpsFailed,
  PoisonCall
]) as any

const describeDefect = (defect: unknown): string => {
  if (defect instanceof Error) return defect.message
  if (typeof defect === "string") return defect
  try {
    return JSON.stringify(defect)
  } catch {
    return String(defect)
  }
}

/**
 * A Worker was asked for (`yield* Counter`, `Counter.increment(…)`,
 * `Counter.instance(…)`) where no Corps provides it. The types prevent this
 * (the Worker stays a requirement until a Corps provides it), so it happens
 * only when they were bypassed — a cast, or an untyped caller — and it is
 * raised as a defect. `corps` names the Corps in context (none: empty),
 * `provided` the Workers they provide, `privateTo` the members whose private
 * member it is (nested Corps made with `Corps.make`).
 *
 * @since 0.2.0
 * @category errors
 */
export class WorkerNotProvided extends Schema.TaggedError<WorkerNotProvided>()("WorkerNotProvided", {
  worker: Schema.String,
  corps: Schema.Array(Schema.String),
  provided: Schema.Array(Schema.String),
  privateTo: Schema.Array(Schema.String)
}) {
  override get message(): string {
    if (this.privateTo.length > 0) {
      const owners = this.privateTo.join(" and ")
      return `Worker ${this.worker} is a private member of ${owners}: only the implementation of ${owners} can use it`
    }
    if (this.corps.length === 0) {
      return `Worker ${this.worker} is not provided: no Corps is in context; provide Corps.layer([...]) with an implementation of ${this.worker}`
    }
    const names = this.corps.map((name) => `"${name}"`).join(", ")
    return `Worker ${this.worker} is not in Corps ${names} (it provides: ${this.provided.join(", ") || "no Worker"}): add an implementation of ${this.worker} to its members`
  }
}

/**
 * The persisted state of a Conc could not be used (see docs/state.md):
 *
 * - `options`: the `state` option is invalid (an `initial` value its Schema
 *   refuses, a `commit: { every }` that is not a positive integer). Raised
 *   where the implementation is defined.
 * - `load`: the store could not be read when an instance started, or what it
 *   holds does not decode with the Schema (the state's Schema changed).
 * - `commit`: the store refused a write. The call's change is rolled back.
 *
 * `load` and `commit` reach the caller as the `defect` of a
 * {@link WorkerDefect}: the instance cannot go on from a state it cannot read
 * or keep (under `onDefect: "restart"` it is rebuilt from the store).
 *
 * @since 0.2.0
 * @category errors
 */
export class StateError extends Schema.TaggedError<StateError>()("StateError", {
  worker: Schema.String,
  key: Schema.optional(Schema.String),
  reason: Schema.Literals(["options", "load", "commit"]),
  detail: Schema.String
}) {
  override get message(): string {
    const where = this.key === undefined ? this.worker : `${this.worker}[${this.key}]`
    return `${where}: persisted state ${this.reason === "options" ? "option is invalid" : `${this.reason} failed`}: ${this.detail}`
  }
}

/**
 * The dashboard could not serve, or a `corps status` / `corps top` could not
 * read one (see docs/monitoring.md):
 *
 * - `options`: `Dashboard.layer`'s port or host is invalid, or the ADDRESS
 *   given to `corps status` / `corps top` is not `host:port` or an http URL.
 * - `listen`: the dashboard's server could not listen (port in use, host not
 *   on this machine).
 * - `unreachable`: nothing answered at the address (refused, timed out).
 * - `response`: something answered, but not a dashboard's snapshot (another
 *   server, another version).
 *
 * @since 0.3.0
 * @category errors
 */
export class DashboardError extends Schema.TaggedError<DashboardError>()("DashboardError", {
  address: Schema.String,
  reason: Schema.Literals(["options", "listen", "unreachable", "response"]),
  detail: Schema.String
}) {
  override get message(): string {
    return dashboardMessages[this.reason](this.address, this.detail)
  }
}

const dashboardMessages: Record<DashboardError["reason"], (address: string, detail: string) => string> = {
  options: (address, detail) => `dashboard at ${address}: invalid address or options: ${detail}`,
  listen: (address, detail) => `dashboard at ${address} could not listen: ${detail}`,
  unreachable: (address, detail) => `no dashboard answers at ${address}: ${detail}`,
  response: (address, detail) => `${address} did not answer with a dashboard snapshot: ${detail}`
}

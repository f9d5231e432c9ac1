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
 * `defectName`, `defectMessage` and `defectStack` describe what died in a form
 * that crosses every Env (an `Error`'s name, message and stack; for another
 * value, its type and a printout). `defect` is the value itself in the Env
 * where it died, and its JSON form (no stack) after crossing one.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerDefect extends Schema.TaggedError<WorkerDefect>()("WorkerDefect", {
  worker: Schema.String,
  method: Schema.String,
  defect: Schema.Defect(),
  /** @since 0.3.0 */
  defectName: Schema.String,
  /** @since 0.3.0 */
  defectMessage: Schema.String,
  /** @since 0.3.0 */
  defectStack: Schema.optional(Schema.String)
}) {
  /**
   * The WorkerDefect of `worker.method` dying with `defect`, its readable
   * fields filled in.
   *
   * @since 0.3.0
   */
  static fromDefect(worker: string, method: string, defect: unknown): WorkerDefect {
    return new WorkerDefect({ worker, method, defect, ...describeDefect(defect) })
  }
  override get message(): string {
    return `${this.worker}.${this.method} died: ${this.defectName === "Error" ? "" : `${this.defectName}: `}${this.defectMessage}`
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
 * A `corps host` daemon could not be reached or would not let the caller in.
 * `reason` says which: `"unreachable"` (no route, timed out, reset),
 * `"refused"` (nothing listens on that port), `"authentication"` (the
 * daemon and the caller do not share the secret, or the peer is not a
 * daemon), `"tls"` (the TLS handshake failed: certificate, CA). Carried by
 * the {@link EnvStartError} of a `host` Env (its `host` field).
 *
 * @since 0.4.0
 * @category errors
 */
export class HostConnectError extends Schema.TaggedError<HostConnectError>()("HostConnectError", {
  host: Schema.String,
  reason: Schema.Literals(["unreachable", "refused", "authentication", "tls"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `cannot connect to host ${this.host} (${this.reason}): ${this.detail}`
  }
}

/**
 * A `corps host` daemon answered, but not as the protocol says: another
 * protocol version, a malformed message, or a refusal to start the Env (a
 * package the program imports is missing on the host, a shipped file's hash
 * is wrong). Carried by the {@link EnvStartError} of a `host` Env.
 *
 * @since 0.4.0
 * @category errors
 */
export class HostProtocolError extends Schema.TaggedError<HostProtocolError>()("HostProtocolError", {
  host: Schema.String,
  reason: Schema.String,
  /** The package the program imports that is not installed on the host, when that is the reason. */
  package: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `host ${this.host}: ${this.reason}`
  }
}

/**
 * An Env could not be started: its module failed to load, or the Worker it
 * should build failed while being built. For a `host` Env, `host` holds the
 * typed reason when the daemon could not be reached or refused (since
 * 0.4.0).
 *
 * @since 0.1.0
 * @category errors
 */
export class EnvStartError extends Schema.TaggedError<EnvStartError>()("EnvStartError", {
  env: Schema.String,
  module: Schema.String,
  reason: Schema.String,
  host: Schema.optional(Schema.Union([HostConnectError, HostProtocolError]))
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
 * A handler failed because a call it made to another Worker failed with a
 * {@link CallError} (`CallLost`, `CorpsClosed`, a `WorkerDefect` of the
 * callee, …) that it let through: handlers may fail with any `CallError`
 * without declaring it, and the caller receives it wrapped in this error,
 * which says where it happened. `worker`/`method` is the call the caller
 * made; `error` is the original failure (its own fields name the Worker that
 * failed). Across several hops the wrapper stays flat: `via` lists the calls
 * in between, outermost first, and `error` is never itself a
 * `DownstreamFailed`. A → B → C with C's Env killed reads, at A's caller,
 * `DownstreamFailed { worker: "A", method: "x", via: [{ worker: "B", method: "m" }], error: CallLost { worker: "C", … } }`.
 *
 * @since 0.3.0
 * @category errors
 */
export class DownstreamFailed extends Schema.TaggedError<DownstreamFailed>()("DownstreamFailed", {
  worker: Schema.String,
  method: Schema.String,
  via: Schema.Array(Schema.Struct({ worker: Schema.String, method: Schema.String })),
  // Typed below, in the class body: a type that names this class cannot appear in its own base expression.
  error: Schema.suspend((): Schema.Codec<unknown, unknown> => DownstreamCauseSchema)
}) {
  /** The original failure (never a `DownstreamFailed`). */
  declare readonly error: DownstreamCause
  /**
   * Wraps `error`, which a handler of `worker.method` failed with: a
   * `DownstreamFailed` from further down is flattened into this one.
   *
   * @since 0.3.0
   */
  static wrap(worker: string, method: string, error: CallError): DownstreamFailed {
    return error._tag === "DownstreamFailed"
      ? new DownstreamFailed({
          worker,
          method,
          via: [{ worker: error.worker, method: error.method }, ...error.via],
          error: error.error
        })
      : new DownstreamFailed({ worker, method, via: [], error })
  }
  override get message(): string {
    const via = this.via.map((hop) => ` via ${hop.worker}.${hop.method}`).join("")
    return `${this.worker}.${this.method} failed because a call it made failed${via}: ${this.error.message}`
  }
}

/**
 * The failure a {@link DownstreamFailed} carries: any {@link CallError} but
 * another `DownstreamFailed` (those are flattened).
 *
 * @since 0.3.0
 * @category models
 */
export type DownstreamCause = Exclude<CallError, DownstreamFailed>

/**
 * A Conc instance could not be built: its builder failed or died, so the
 * call that needed it was not run. Only that instance is affected: the Corps
 * keeps serving other keys, and the next call to this key tries to build it
 * again. `reason` (and `stack`, when there is one) says what went wrong;
 * `error` is the typed failure when the builder failed with a
 * {@link CallError} (a Worker it called was lost, say); otherwise `defect`
 * is what it died with (the value itself in its own Env, its JSON form after
 * crossing one, as for {@link WorkerDefect}).
 *
 * @since 0.3.0
 * @category errors
 */
export class InstanceStartFailed extends Schema.TaggedError<InstanceStartFailed>()("InstanceStartFailed", {
  worker: Schema.String,
  key: Schema.String,
  reason: Schema.String,
  stack: Schema.optional(Schema.String),
  /** What the builder died with (or failed with, when not a CallError): the value itself in its own Env. */
  defect: Schema.optional(Schema.Defect()),
  error: Schema.optional(Schema.suspend((): Schema.Codec<unknown, unknown> => CallError))
}) {
  /** The builder's typed failure, when it failed with a {@link CallError}. */
  declare readonly error: CallError | undefined
  override get message(): string {
    return `${this.worker}[${this.key}] could not be built: ${this.reason}`
  }
}

/**
 * A call reached a created instance (`Worker.create`) that was closed — by
 * `Worker.close` or when its creator's Scope closed. Its finalizers have
 * run; it serves no further call.
 *
 * @since 0.3.0
 * @category errors
 */
export class InstanceClosed extends Schema.TaggedError<InstanceClosed>()("InstanceClosed", {
  worker: Schema.String,
  key: Schema.String
}) {
  override get message(): string {
    return `${this.worker}[${this.key}] was closed`
  }
}

/**
 * `Worker.create` was given an init value its contract's `init` Schema
 * refuses. Nothing was sent and no instance exists; `issue` says what is
 * wrong with the value.
 *
 * @since 0.3.0
 * @category errors
 */
export class InvalidInit extends Schema.TaggedError<InvalidInit>()("InvalidInit", {
  worker: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `${this.worker}.create: the init value does not fit the contract's init Schema: ${this.issue}`
  }
}

/**
 * `Worker.create` was asked for a location the Worker's placement does not
 * have (another Env name, a slot index out of range, a slot of a cluster
 * Env, a bad `num`). Nothing was created; `reason` names what exists.
 *
 * @since 0.3.0
 * @category errors
 */
export class InvalidLocation extends Schema.TaggedError<InvalidLocation>()("InvalidLocation", {
  worker: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.worker}.create: ${this.reason}`
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
  | DownstreamFailed
  | InstanceStartFailed
  | InstanceClosed
  | InvalidInit
  | InvalidLocation

/** Every call error but DownstreamFailed, once: the Schemas below and {@link isCallError} list them from here. */
const leafCallErrors = [
  WorkerDefect,
  MailboxFull,
  UnknownWorker,
  UnknownMethod,
  SerializationError,
  CallLost,
  CorpsClosed,
  WorkerStopped,
  CorpsFailed,
  PoisonCall,
  InstanceStartFailed,
  InstanceClosed,
  InvalidInit,
  InvalidLocation
] as const

/**
 * The Schema of {@link CallError}, used to carry call errors across Envs.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CallError: Schema.Codec<CallError, unknown> = Schema.Union([...leafCallErrors, DownstreamFailed]) as any

/** What a DownstreamFailed carries: any call error but itself (it is flat over hops). */
const DownstreamCauseSchema: Schema.Codec<unknown, unknown> = Schema.Union(leafCallErrors) as any

/**
 * Every call error's class, once ({@link CallError} as classes): what
 * {@link isCallError} tests, and what the HTTP gateway gives a status each.
 *
 * @internal
 */
export const callErrorClasses = [...leafCallErrors, DownstreamFailed] as const

/**
 * Whether `u` is one of effect-corps' own call errors ({@link CallError}).
 *
 * @since 0.3.0
 * @category guards
 */
export const isCallError = (u: unknown): u is CallError => {
  if (typeof u !== "object" || u === null) return false
  return callErrorClasses.some((Class) => u instanceof Class)
}

/**
 * How a defect reads after crossing an Env: its name, message and stack when
 * it is an `Error` (or has a `message`), else its type and a printout.
 */
const describeDefect = (
  defect: unknown
): { readonly defectName: string; readonly defectMessage: string; readonly defectStack?: string } => {
  if (typeof defect === "object" && defect !== null && typeof (defect as Error).message === "string") {
    const error = defect as Error & { readonly _tag?: unknown }
    const name = typeof error._tag === "string" ? error._tag : typeof error.name === "string" ? error.name : "Error"
    return typeof error.stack === "string"
      ? { defectName: name, defectMessage: error.message, defectStack: error.stack }
      : { defectName: name, defectMessage: error.message }
  }
  if (typeof defect === "string") return { defectName: "string", defectMessage: defect }
  let printed: string
  try {
    printed = JSON.stringify(defect) ?? String(defect)
  } catch {
    printed = String(defect)
  }
  return { defectName: defect === null ? "null" : typeof defect, defectMessage: printed }
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
 * `load` reaches the caller as the `defect` of an {@link InstanceStartFailed}
 * (the instance is not built; the next call tries again), `commit` as the
 * `defect` of a {@link WorkerDefect}: the instance cannot go on from a state
 * it cannot keep (under `onDefect: "restart"` it is rebuilt from the store).
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
 * An option of a Worker's implementation is invalid (for example a Conc's
 * `passivateAfter` of 0, a negative duration or NaN). `Corps.layer` fails
 * with it before any Env starts; fix the option.
 *
 * @since 0.3.0
 * @category errors
 */
export class WorkerOptionError extends Schema.TaggedError<WorkerOptionError>()("WorkerOptionError", {
  worker: Schema.String,
  option: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.worker}: option ${this.option} ${this.reason}`
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

/**
 * `Corps.connect` could not open a connection to a served Corps: nothing
 * listens there (`refused`), no answer in time (`unreachable`), the secret
 * was refused or not proven (`authentication`), the TLS handshake failed
 * (`tls`), or the peer is not a served Corps or spoke another protocol
 * version (`protocol`). `refused` and `unreachable` are retried until the
 * connect timeout; the others fail at once.
 *
 * @since 0.4.0
 * @category errors
 */
export class ExtConnectError extends Schema.TaggedError<ExtConnectError>()("ExtConnectError", {
  address: Schema.String,
  reason: Schema.Literals(["unreachable", "refused", "authentication", "tls", "protocol"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `cannot connect to the Corps served at ${this.address} (${this.reason}): ${this.detail}`
  }
}

/**
 * `Corps.connect` found that a contract differs between this program and
 * the one serving it at `address`: the methods named were added, removed,
 * or have a payload, success or error Schema (or `stream`) that differs.
 * Found at connect time, before any call; redeploy one side so that both
 * declare the same contract.
 *
 * @since 0.4.0
 * @category errors
 */
export class ContractMismatch extends Schema.TaggedError<ContractMismatch>()("ContractMismatch", {
  address: Schema.String,
  worker: Schema.String,
  methods: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `the contract of ${this.worker} differs from the one served at ${this.address} in: ${this.methods.join(", ")}`
  }
}

/**
 * `Corps.connect` asked for Workers that the program at `address` does not
 * serve (they are not in its `Corps.serve` list). `served` lists those it
 * does serve.
 *
 * @since 0.4.0
 * @category errors
 */
export class WorkerNotServed extends Schema.TaggedError<WorkerNotServed>()("WorkerNotServed", {
  address: Schema.String,
  workers: Schema.Array(Schema.String),
  served: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `${this.workers.join(", ")} not served at ${this.address} (it serves: ${this.served.join(", ") || "nothing"})`
  }
}

/**
 * `Corps.serve` could not start: its address is not `host:port` or is in
 * use, its secret is missing or unreadable, or a TLS file cannot be read.
 *
 * @since 0.4.0
 * @category errors
 */
export class ExtServeError extends Schema.TaggedError<ExtServeError>()("ExtServeError", {
  listen: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot serve the Corps on ${this.listen}: ${this.reason}`
  }
}

/**
 * An HTTP gateway (`Gateway.layer`) could not serve (see docs/external.md):
 *
 * - `options`: an option is invalid (a port out of range, an empty host, a
 *   `maxBodyBytes` that is not a positive integer, a Worker served twice or
 *   whose name cannot be a path segment, a path option not starting with `/`).
 * - `listen`: the server could not listen (port in use, host not on this
 *   machine).
 *
 * @since 0.4.0
 * @category errors
 */
export class GatewayError extends Schema.TaggedError<GatewayError>()("GatewayError", {
  address: Schema.String,
  reason: Schema.Literals(["options", "listen"]),
  detail: Schema.String
}) {
  override get message(): string {
    return this.reason === "options"
      ? `gateway at ${this.address}: invalid options: ${this.detail}`
      : `gateway at ${this.address} could not listen: ${this.detail}`
  }
}

/**
 * An HTTP request to the gateway carried a body its method's payload Schema
 * refuses (or that is not JSON). Answered with status 400; nothing was
 * called. `issue` is the Schema's account of what is wrong.
 *
 * @since 0.4.0
 * @category errors
 */
export class InvalidPayload extends Schema.TaggedError<InvalidPayload>()("InvalidPayload", {
  worker: Schema.String,
  method: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `${this.worker}.${this.method}: the request body does not fit the payload Schema: ${this.issue}`
  }
}

/**
 * An HTTP request to a gateway with authentication carried no bearer token,
 * or one the gateway refuses. Answered with status 401; nothing was called.
 *
 * @since 0.4.0
 * @category errors
 */
export class GatewayUnauthorized extends Schema.TaggedError<GatewayUnauthorized>()("GatewayUnauthorized", {
  reason: Schema.Literals(["missing", "refused"])
}) {
  override get message(): string {
    return this.reason === "missing" ? "no bearer token was given" : "the bearer token was refused"
  }
}

/**
 * An HTTP request's body was larger than the gateway's `maxBodyBytes`.
 * Answered with status 413 (and the connection closed); nothing was called.
 *
 * @since 0.4.0
 * @category errors
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  limit: Schema.Number
}) {
  override get message(): string {
    return `the request body is larger than the gateway's limit of ${this.limit} bytes`
  }
}

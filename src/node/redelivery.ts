/**
 * Re-delivery of calls lost with a thread or process Env (docs/redelivery.md).
 *
 * A call of a method declared `idempotent: true` that fails with `CallLost`
 * is sent again under the method's retry policy, through the same route
 * (a Func: its least-loaded live replica; a Conc key: its slot, which fails
 * fast with `CallLost { mayHaveRun: false }` until the pool has restarted
 * it, so the backoff is what waits for the replacement). Each loss in flight
 * (`mayHaveRun: true`) counts as a crash the call may have caused; at the
 * method's `quarantineAfter` the call fails with `PoisonCall` instead.
 *
 * Nothing here runs on a healthy call: the Target calls {@link redeliver}
 * only from its failure branch, and the policy of each method is read once,
 * when the Corps starts.
 */
import { Cause, Clock, Duration, Effect, Exit, Schedule } from "effect"
import { CallLost, PoisonCall } from "../CorpsError.ts"
import type { Register } from "../internal/dispatch.ts"
import type { EventHub } from "../internal/events.ts"
import type * as Wire from "../internal/wire.ts"
import { type AnyWorker, defaultRetry, type MethodSpec } from "../Worker.ts"

/** How one idempotent method's lost calls are sent again. */
export interface Policy {
  readonly schedule: Schedule.Schedule<unknown, CallLost>
  readonly quarantineAfter: number
}

/** Where re-delivery reports, and whether it must stop (the Corps is closing). */
export interface Context {
  readonly corps: string
  readonly events: EventHub
  readonly closing: () => boolean
}

/** The default of a method's `quarantineAfter`. */
export const DEFAULT_QUARANTINE_AFTER = 2

/** The Schedule of a method's `retry` (see `RetryPolicy` in Worker.ts). */
export const scheduleOf = (retry: MethodSpec["retry"]): Schedule.Schedule<unknown, CallLost> => {
  if (Schedule.isSchedule(retry)) return retry as Schedule.Schedule<unknown, CallLost>
  const cap = Duration.fromInputUnsafe(retry?.cap ?? defaultRetry.cap)
  return Schedule.exponential(retry?.base ?? defaultRetry.base).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, cap))),
    Schedule.upTo({ duration: retry?.within ?? defaultRetry.within, times: retry?.times })
  )
}

/** What is wrong with a method's re-delivery options, or `undefined`. */
const problemOf = (spec: MethodSpec): string | undefined => {
  const after = spec.quarantineAfter
  if (after !== undefined && !(Number.isInteger(after) && after >= 1))
    return `quarantineAfter must be an integer ≥ 1, got ${after}`
  const retry = spec.retry
  if (retry === undefined || Schedule.isSchedule(retry)) return undefined
  if (retry.times !== undefined && !(Number.isInteger(retry.times) && retry.times >= 0))
    return `retry.times must be an integer ≥ 0, got ${retry.times}`
  for (const part of ["within", "base", "cap"] as const) {
    const value = retry[part]
    if (value !== undefined && Duration.fromInput(value)._tag === "None")
      return `retry.${part} is not a duration: ${String(value)}`
  }
  return undefined
}

/**
 * The re-delivery policy of each idempotent, non-stream method of `worker`,
 * or the first problem with one (`Worker.method: what`).
 */
export const policiesOf = (worker: AnyWorker): ReadonlyMap<string, Policy> | string => {
  const policies = new Map<string, Policy>()
  for (const [method, spec] of Object.entries(worker.methods)) {
    const problem = problemOf(spec)
    if (problem !== undefined) return `${worker.key}.${method}: ${problem}`
    if (spec.idempotent !== true || spec.stream === true) continue
    policies.set(method, {
      schedule: scheduleOf(spec.retry),
      quarantineAfter: spec.quarantineAfter ?? DEFAULT_QUARANTINE_AFTER
    })
  }
  return policies
}

/** The `CallLost` in a failed reply, if that is why it failed. */
export const lostIn = (exit: Exit.Failure<unknown, unknown>): CallLost | undefined => {
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" && error.value instanceof CallLost ? error.value : undefined
}

/** A transferred payload left the caller with its first send: its buffers are empty now and cannot be sent again. */
const moved = (request: Wire.Call): boolean => request.transfer?.some((buffer) => buffer.detached) === true

/** Where a lost call goes again: how to send it, and whether an Env is there to take it. */
export interface Route {
  readonly register: Register
  /** Whether an Env of the route is up; while none is, a pause passes without a re-send. */
  readonly up: () => boolean
}

/**
 * Sends `request` again through `route` after it was `lost`, until it is
 * answered (its reply), the policy gives up (the last `CallLost`, with
 * `mayHaveRun` true if any attempt may have run), or it has been in flight
 * through `quarantineAfter` losses (`PoisonCall`). Each re-send is a
 * `CallRedelivered` event; a pause that finds the route's Envs still down
 * sends nothing and reports nothing.
 */
export const redeliver = (
  context: Context,
  policy: Policy,
  request: Wire.Call,
  route: Route,
  lost: CallLost
): Effect.Effect<Wire.Exit, unknown> =>
  Effect.gen(function* () {
    const step = yield* Schedule.toStepWithSleep(policy.schedule)
    let last = lost
    let crashes = 0
    let mayHaveRun = false
    let attempt = 0
    while (true) {
      if (last.mayHaveRun === true) {
        crashes++
        mayHaveRun = true
      }
      if (crashes >= policy.quarantineAfter) {
        yield* context.events.emit({
          _tag: "CallQuarantined",
          corps: context.corps,
          at: yield* Clock.currentTimeMillis,
          worker: request.worker,
          method: request.method,
          crashes
        })
        return yield* new PoisonCall({ worker: request.worker, method: request.method, crashes, reason: last.reason })
      }
      const giveUp = new CallLost({ ...last, mayHaveRun })
      if (context.closing() || moved(request)) return yield* giveUp
      // The schedule's pause; when it is exhausted the caller gets the last loss.
      const next = yield* Effect.exit(step(last))
      if (Exit.isFailure(next) || context.closing()) return yield* giveUp
      if (!route.up()) {
        last = new CallLost({ ...last, mayHaveRun: false })
        continue
      }
      attempt++
      yield* context.events.emit({
        _tag: "CallRedelivered",
        corps: context.corps,
        at: yield* Clock.currentTimeMillis,
        worker: request.worker,
        method: request.method,
        attempt
      })
      const reply = yield* Effect.exit(Effect.callback<Wire.Exit, unknown>((resume) => route.register(request, resume)))
      if (Exit.isSuccess(reply)) return reply.value
      const again = lostIn(reply as Exit.Failure<unknown, unknown>)
      if (again === undefined) return yield* reply
      last = again
    }
  })

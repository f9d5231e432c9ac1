/**
 * Running one handler call: a handler may return a plain value (a synchronous
 * handler, run with no Effect machinery at all) or an Effect. Defects — a
 * throw while building the Effect, or a die while running it — become the
 * typed {@link WorkerDefect}, so a caller in any Env sees the same tag. A
 * {@link CallError} the handler fails with (from a call it made and let
 * through) becomes a {@link DownstreamFailed}, so the caller never mistakes
 * it for the failure of its own call.
 */
import { Cause, Effect, Effectable, Exit } from "effect"
import { type CallError, DownstreamFailed, InstanceStartFailed, isCallError, WorkerDefect } from "../CorpsError.ts"

/** A handler as the runtime sees it: payload in, value or Effect out. */
export type AnyHandler = (payload: any) => unknown

/** Wraps a defect of `worker.method` as the typed error callers receive. */
export const defectError = (worker: string, method: string, defect: unknown): WorkerDefect =>
  WorkerDefect.fromDefect(worker, method, defect)

/**
 * The failure side of one method: a die becomes WorkerDefect, a CallError
 * becomes DownstreamFailed; declared failures and interruption pass through
 * untouched. Made once per method and shared by every call (no closure per
 * call); it runs only when a call fails, so successes pay nothing for it.
 */
export type DefectMapper = (cause: Cause.Cause<unknown>) => Effect.Effect<never, unknown>

/** Makes the {@link DefectMapper} of `worker.method`. */
export const defectMapper =
  (worker: string, method: string): DefectMapper =>
  (cause) => {
    if (Cause.hasInterrupts(cause)) return Exit.failCause(cause)
    if (!Cause.hasDies(cause)) return downstream(worker, method, cause)
    const die = cause.reasons.find(Cause.isDieReason)
    return Exit.fail(defectError(worker, method, die?.defect))
  }

/**
 * CallErrors about the called instance itself, raised by effect-corps inside
 * its handlers or its build (a created instance refusing calls once closed,
 * a cluster entity's failed build): they reach the caller as they are, not
 * as DownstreamFailed. Marked where they are made ({@link markOwn}), always
 * under the instance's own boundary, so the first boundary that reads the
 * mark ({@link takeOwn}, which takes it) is the instance's: a handler of
 * another Worker that meets the same error object (in the same runtime) and
 * lets it through is then wrapped as usual.
 */
const ownErrors = new WeakSet<object>()

/** Marks `error` as the called instance's own (see {@link ownErrors}), and returns it. */
export const markOwn = <E extends object>(error: E): E => {
  ownErrors.add(error)
  return error
}

/** Whether `error` is marked as the called instance's own, taking the mark. */
export const takeOwn = (error: unknown): boolean =>
  typeof error === "object" && error !== null && ownErrors.delete(error)

/**
 * A typed failure of `worker.method`'s handler: a CallError (met on a call
 * the handler made) is wrapped as DownstreamFailed; a declared error passes.
 */
export const downstream = (worker: string, method: string, cause: Cause.Cause<unknown>): Exit.Exit<never, unknown> => {
  const error = cause.reasons.find(Cause.isFailReason)
  if (error === undefined || !isCallError(error.error) || takeOwn(error.error)) return Exit.failCause(cause)
  return Exit.fail(DownstreamFailed.wrap(worker, method, error.error as CallError))
}

/**
 * How the build of instance `key` of `worker` failed, as the typed error its
 * caller receives: the builder's CallError is kept, a die is described.
 */
export const startFailed = (worker: string, key: string, cause: Cause.Cause<unknown>): InstanceStartFailed => {
  const failure = cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined && isCallError(failure.error)) {
    return new InstanceStartFailed({ worker, key, reason: failure.error.message, error: failure.error })
  }
  const died = failure === undefined ? Cause.squash(cause) : failure.error
  const described = WorkerDefect.fromDefect(worker, "", died)
  const reason = `${described.defectName === "Error" ? "" : `${described.defectName}: `}${described.defectMessage}`
  return described.defectStack === undefined
    ? new InstanceStartFailed({ worker, key, reason, defect: died })
    : new InstanceStartFailed({ worker, key, reason, stack: described.defectStack, defect: died })
}

/**
 * What the caller of instance `key` receives when its build failed: an error
 * about the instance itself that effect-corps raised in the builder (a
 * closed created instance that must not come back: `InstanceClosed`) as it
 * is, anything else as {@link startFailed}.
 */
export const startFailure = (worker: string, key: string, cause: Cause.Cause<unknown>): CallError => {
  const failure = cause.reasons.find(Cause.isFailReason)
  return failure !== undefined && takeOwn(failure.error)
    ? (failure.error as CallError)
    : startFailed(worker, key, cause)
}

/**
 * `Effect.isEffect` without its generic `hasProperty` (a `dual`): this runs on
 * every call's result.
 */
export const isEffectResult = (u: unknown): u is Effect.Effect<unknown, unknown> =>
  ((typeof u === "object" && u !== null) || typeof u === "function") && Effect.TypeId in u

/** Where a call finds its worker's name and the defect mapper of a method. */
export interface Mappers {
  readonly worker: string
  mapperOf(method: string): DefectMapper
}

/**
 * What the caller runs for a handler's `result`: a plain value as a completed
 * Exit; an Exit (`Effect.succeed`, `Effect.fail`, `Effect.die` are Exits) mapped
 * at once, with no frame; any other Effect under one `catchCause` frame.
 */
export const settle = (result: unknown, mappers: Mappers, method: string): Effect.Effect<unknown, unknown> => {
  if (!isEffectResult(result)) return Exit.succeed(result)
  if (Exit.isExit(result)) return result._tag === "Success" ? result : mappers.mapperOf(method)(result.cause)
  return Effect.catchCause(result, mappers.mapperOf(method))
}

/**
 * Calls `handler` and returns what the caller should run: the handler's own
 * Effect (defects caught), or an already-completed Exit for a synchronous
 * handler, one that returned an Exit, or one that threw.
 */
export const invokeWith = (
  handler: AnyHandler,
  payload: unknown,
  mappers: Mappers,
  method: string
): Effect.Effect<unknown, unknown> => {
  let result: unknown
  try {
    result = handler(payload)
  } catch (defect) {
    // Through the method's mapper, which may note the defect (a Conc under `onDefect: "restart"`).
    return mappers.mapperOf(method)(Cause.die(defect))
  }
  return settle(result, mappers, method)
}

/** {@link invokeWith} with a mapper made for this call (off the hot path). */
export const invokeHandler = (
  handler: AnyHandler,
  payload: unknown,
  worker: string,
  method: string
): Effect.Effect<unknown, unknown> =>
  invokeWith(handler, payload, { worker, mapperOf: () => defectMapper(worker, method) }, method)

/**
 * An iterator for `yield*` that takes its one step when the generator reaches
 * it (that is, at run time, once per run) and yields what `step` returns. When
 * that is an Exit — a synchronous handler's value, or a handler that returned
 * `Effect.succeed` — `Effect.gen` takes it without a trip through the fiber's
 * run loop, as it does for `yield* Effect.succeed(x)`. The object is its own
 * iterator and its own result record (one allocation per `yield*`).
 */
export class StepOnce {
  private readonly owner: { step(): Effect.Effect<unknown, unknown> }
  private started = false
  done = false
  value: unknown = undefined
  constructor(owner: { step(): Effect.Effect<unknown, unknown> }) {
    this.owner = owner
  }
  next(value: unknown): this {
    if (this.started) {
      this.done = true
      this.value = value
      return this
    }
    this.started = true
    this.value = this.owner.step()
    return this
  }
  [Symbol.iterator](): this {
    return this
  }
}

/**
 * The prototype of a call primitive: running it (or `yield*`-ing it) takes
 * `step` once per run. Shared by Conc and Func calls.
 */
export const callPrototype = <Self extends { step(): Effect.Effect<unknown, unknown> }>(
  label: string,
  step: (this: Self) => Effect.Effect<unknown, unknown>
): any => {
  const proto: any = Effectable.Prototype<Effect.Effect<unknown, unknown>>({
    label,
    evaluate() {
      return step.call(this as unknown as Self)
    }
  })
  proto.step = step
  // `yield*` of a call takes the step when the generator reaches it (see StepOnce).
  proto[Symbol.iterator] = function (this: Self) {
    return new StepOnce(this)
  }
  return proto
}

/**
 * Running one handler call: a handler may return a plain value (a synchronous
 * handler, run with no Effect machinery at all) or an Effect. Defects — a
 * throw while building the Effect, or a die while running it — become the
 * typed {@link WorkerDefect}, so a caller in any Env sees the same tag.
 */
import { Cause, Effect, Exit } from "effect"
import { WorkerDefect } from "../CorpsError.ts"

/** A handler as the runtime sees it: payload in, value or Effect out. */
export type AnyHandler = (payload: any) => unknown

/** Wraps a defect of `worker.method` as the typed error callers receive. */
export const defectError = (worker: string, method: string, defect: unknown): WorkerDefect =>
  new WorkerDefect({ worker, method, defect })

/**
 * Turns the die of an Effect handler into a typed failure, leaving its own
 * typed failures and interruption untouched.
 */
export const catchDefects = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  worker: string,
  method: string
): Effect.Effect<A, E | WorkerDefect, R> =>
  Effect.catchCause(effect, (cause): Effect.Effect<never, E | WorkerDefect> => {
    if (Cause.hasInterrupts(cause) || !Cause.hasDies(cause)) return Effect.failCause(cause)
    const die = cause.reasons.find(Cause.isDieReason)
    return Effect.fail(defectError(worker, method, die?.defect))
  })

/**
 * Calls `handler` and returns what the caller should run: the handler's own
 * Effect (defects caught), or an already-completed Exit for a synchronous
 * handler or one that threw.
 */
export const invokeHandler = (
  handler: AnyHandler,
  payload: unknown,
  worker: string,
  method: string
): Effect.Effect<unknown, unknown> => {
  let result: unknown
  try {
    result = handler(payload)
  } catch (defect) {
    return Exit.fail(defectError(worker, method, defect))
  }
  return Effect.isEffect(result)
    ? catchDefects(result as Effect.Effect<unknown, unknown>, worker, method)
    : Exit.succeed(result)
}

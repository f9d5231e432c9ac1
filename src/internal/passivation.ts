/**
 * `passivateAfter`: the option's check, and the sweeper that applies it.
 *
 * The call path reads no clock: each call only clears its instance's sweep
 * count (src/internal/conc.ts). The sweeper — one fiber per Conc Worker
 * with the option, in its Corps' scope — wakes every `passivateAfter / 2`
 * and retires the instances unused for three sweeps in a row: idle at least
 * `passivateAfter`, at most half as long again.
 */
import { Duration, Effect } from "effect"
import { WorkerOptionError } from "../CorpsError.ts"
import type { ConcWorker } from "./conc.ts"

/**
 * The option in milliseconds: `undefined` when absent or infinite (no
 * passivation), a string saying what is wrong when it is not a positive
 * duration. `Duration.fromInput` reads NaN as 0 and accepts negatives, so
 * numbers are checked before it.
 */
export const passivateAfterMillis = (input: Duration.Input | undefined): number | undefined | string => {
  if (input === undefined) return undefined
  if (typeof input === "number" && Number.isNaN(input)) return "must be a positive duration, not NaN"
  const decoded = Duration.fromInput(input)
  if (decoded._tag === "None") return `must be a positive duration, not ${JSON.stringify(input)}`
  const millis = Duration.toMillis(decoded.value)
  if (millis === Infinity) return undefined
  if (!(millis > 0)) return `must be a positive duration, not ${JSON.stringify(input)}`
  return millis
}

/**
 * Checks the `passivateAfter` of a Conc Worker: `WorkerOptionError` when it
 * is not a positive duration (0, a negative, NaN or an unreadable string).
 */
export const checkPassivateAfter = (
  worker: string,
  input: Duration.Input | undefined
): Effect.Effect<void, WorkerOptionError> => {
  const millis = passivateAfterMillis(input)
  return typeof millis === "string"
    ? Effect.fail(new WorkerOptionError({ worker, option: "passivateAfter", reason: millis }))
    : Effect.void
}

/**
 * The sweeper of `conc`: sweeps every `millis / 2` until interrupted (its
 * Corps' scope closes). A sweep waits for the finalizers of the instances it
 * retires, so sweeps never overlap.
 */
export const sweeper = (conc: ConcWorker, millis: number): Effect.Effect<never> =>
  Effect.forever(Effect.andThen(Effect.sleep(millis / 2), conc.sweep(millis)))

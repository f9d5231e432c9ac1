/**
 * Supervision policies: how a Corps heals itself. A policy says how soon a
 * lost thread or process Env is started again (a restart schedule), how many
 * restarts are tolerated within a window (an intensity limit, as OTP's
 * MaxR/MaxT), and what happens once that limit is passed (`"escalate"` or
 * `"stop"`).
 *
 * A policy is data in the placement, per Env and per Worker:
 *
 * ```json
 * {
 *   "envs": {
 *     "cpu": {
 *       "kind": "thread",
 *       "supervision": { "maxRestarts": 20, "withinMillis": 60000, "outcome": "stop" }
 *     }
 *   }
 * }
 * ```
 *
 * and code, where any Effect `Schedule` may replace the backoff:
 *
 * ```ts
 * import { Schedule } from "effect"
 * import { Supervision } from "effect-corps"
 *
 * const policy = Supervision.policy({ backoff: Schedule.spaced("1 second"), maxRestarts: 3, within: "1 minute" })
 * ```
 *
 * Defaults (docs/supervision.md): the first restart after a healthy period is
 * immediate, each further one waits 100 ms doubling up to 5 s, ±20% jitter;
 * at most 10 restarts within 10 s; then `"escalate"`.
 *
 * @since 0.2.0
 */
import { Cause, Duration, Effect, Random, Schedule, Schema } from "effect"

/**
 * What happens when a policy's intensity limit is passed: `"stop"` stops the
 * Workers concerned (their calls fail with `WorkerStopped`), `"escalate"`
 * hands the failure to the Corps (its calls fail with `CorpsFailed`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Outcome = Schema.Literals(["escalate", "stop"])

/**
 * @since 0.2.0
 * @category models
 */
export type Outcome = typeof Outcome.Type

const Millis = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * Exponential backoff as data: the n-th delayed restart waits
 * `baseMillis · 2^(n-1)`, at most `capMillis`, scaled by a random factor in
 * `[1 - jitter, 1 + jitter]` (then capped again).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Backoff = Schema.Struct({
  baseMillis: Schema.optional(Millis),
  capMillis: Schema.optional(Millis),
  jitter: Schema.optional(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1)))
})

/**
 * @since 0.2.0
 * @category models
 */
export type Backoff = typeof Backoff.Type

/** Any Schedule given from code (a JSON placement cannot hold one). */
const AnySchedule = Schema.declare((u: unknown): u is Schedule.Schedule<unknown> => Schedule.isSchedule(u), {
  title: "Schedule"
})

/**
 * A supervision policy, as it appears in a placement (`envs.<name>.supervision`,
 * `workers.<Worker>.supervision`). Every field is optional; a missing one
 * takes the enclosing policy's value, then the default.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Policy = Schema.Struct({
  /** The delays between restarts: exponential backoff as data, or any `Schedule` from code. */
  backoff: Schema.optional(Schema.Union([AnySchedule, Backoff])),
  /** At most this many restarts within `withinMillis`; one more exhausts the policy. */
  maxRestarts: Schema.optional(Millis),
  withinMillis: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  outcome: Schema.optional(Outcome)
})

/**
 * @since 0.2.0
 * @category models
 */
export type Policy = typeof Policy.Type

/**
 * The defaults of every policy field.
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaults = {
  backoff: { baseMillis: 100, capMillis: 5000, jitter: 0.2 },
  maxRestarts: 10,
  withinMillis: 10_000,
  outcome: "escalate"
} as const satisfies {
  readonly backoff: Required<Backoff>
  readonly maxRestarts: number
  readonly withinMillis: number
  readonly outcome: Outcome
}

/**
 * Builds a policy in code, with durations as Effect durations and the
 * backoff as data or as any `Schedule` (whose outputs are ignored; its
 * delays are the waits between consecutive restarts, and its end exhausts
 * the policy as the intensity limit would).
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import { Supervision } from "effect-corps"
 *
 * const patient = Supervision.policy({ maxRestarts: 100, within: "1 minute", outcome: "stop" })
 * const fixed = Supervision.policy({ backoff: Schedule.spaced("500 millis") })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const policy = (options: {
  readonly backoff?:
    | {
        readonly base?: Duration.Input | undefined
        readonly cap?: Duration.Input | undefined
        readonly jitter?: number | undefined
      }
    | Schedule.Schedule<unknown>
    | undefined
  readonly maxRestarts?: number | undefined
  readonly within?: Duration.Input | undefined
  readonly outcome?: Outcome | undefined
}): Policy => {
  const millis = (input: Duration.Input) => Math.round(Duration.toMillis(Duration.fromInputUnsafe(input)))
  const backoff = options.backoff
  return {
    ...(backoff === undefined
      ? {}
      : Schedule.isSchedule(backoff)
        ? { backoff: backoff as Schedule.Schedule<unknown> }
        : {
            backoff: {
              ...(backoff.base === undefined ? {} : { baseMillis: millis(backoff.base) }),
              ...(backoff.cap === undefined ? {} : { capMillis: millis(backoff.cap) }),
              ...(backoff.jitter === undefined ? {} : { jitter: backoff.jitter })
            }
          }),
    ...(options.maxRestarts === undefined ? {} : { maxRestarts: options.maxRestarts }),
    ...(options.within === undefined ? {} : { withinMillis: millis(options.within) }),
    ...(options.outcome === undefined ? {} : { outcome: options.outcome })
  }
}

/**
 * A policy with every field settled.
 *
 * @since 0.2.0
 * @category models
 */
export interface Resolved {
  /** The waits between consecutive restarts; its end exhausts the policy. */
  readonly schedule: Schedule.Schedule<unknown>
  readonly maxRestarts: number
  readonly withinMillis: number
  readonly outcome: Outcome
}

/**
 * Settles a policy: each field from the first of `policies` that gives it,
 * else its default. A Worker's policy comes before its Env's.
 *
 * @since 0.2.0
 * @category resolving
 */
export const resolve = (...policies: ReadonlyArray<Policy | undefined>): Resolved => {
  const pick = <K extends keyof Policy>(key: K): Policy[K] => policies.find((p) => p?.[key] !== undefined)?.[key]
  const backoff = pick("backoff")
  return {
    schedule:
      backoff !== undefined && Schedule.isSchedule(backoff)
        ? (backoff as Schedule.Schedule<unknown>)
        : exponential(backoff as Backoff | undefined),
    maxRestarts: pick("maxRestarts") ?? defaults.maxRestarts,
    withinMillis: pick("withinMillis") ?? defaults.withinMillis,
    outcome: pick("outcome") ?? defaults.outcome
  }
}

/**
 * The wait before the `attempt`-th delayed restart (1-based) under
 * `backoff`, for a uniform `random` in [0, 1). Pure.
 *
 * @since 0.2.0
 * @category backoff
 */
export const backoffDelay = (backoff: Backoff | undefined, attempt: number, random: number): number => {
  const base = backoff?.baseMillis ?? defaults.backoff.baseMillis
  const cap = backoff?.capMillis ?? defaults.backoff.capMillis
  const jitter = backoff?.jitter ?? defaults.backoff.jitter
  const raw = Math.min(cap, base * 2 ** Math.max(0, attempt - 1))
  return Math.round(Math.min(cap, raw * (1 - jitter + 2 * jitter * random)))
}

/**
 * Exponential backoff with jitter as a `Schedule` that never ends: each step
 * waits {@link backoffDelay} (random from the `Random` service, so a seeded
 * `Random` gives a fixed sequence) and outputs that wait in milliseconds.
 *
 * @since 0.2.0
 * @category backoff
 */
export const exponential = (backoff?: Backoff | undefined): Schedule.Schedule<number> =>
  Schedule.fromStepWithMetadata(
    Effect.succeed((meta: Schedule.InputMetadata<unknown>) =>
      Effect.map(Random.next, (random) => {
        const delay = backoffDelay(backoff, meta.attempt, random)
        return [delay, Duration.millis(delay)] as [number, Duration.Duration]
      })
    )
  )

/**
 * The restarts that count against an intensity limit, once a restart at
 * `now` is added: those within the last `withinMillis`. `exhausted` when they
 * are more than `maxRestarts` (OTP: more than MaxR restarts within MaxT).
 * Pure.
 *
 * @since 0.2.0
 * @category intensity
 */
export const recordRestart = (
  history: ReadonlyArray<number>,
  now: number,
  limit: { readonly maxRestarts: number; readonly withinMillis: number }
): { readonly history: ReadonlyArray<number>; readonly exhausted: boolean } => {
  const kept = history.filter((at) => now - at < limit.withinMillis)
  kept.push(now)
  return { history: kept, exhausted: kept.length > limit.maxRestarts }
}

/**
 * The restart state of one supervised thing (an Env slot): its recent
 * restarts and the step of its backoff. A restart after a quiet window
 * (no restart within `withinMillis`) is immediate and resets the backoff;
 * each further one waits the schedule's next delay.
 *
 * @since 0.2.0
 * @category intensity
 */
export interface Backoffs {
  /**
   * The wait before a restart at `now` (ms) and its attempt number since the
   * last quiet window (1 for an immediate one); `undefined` when the schedule
   * has ended.
   */
  readonly next: (now: number) => Effect.Effect<{ readonly delayMillis: number; readonly attempt: number } | undefined>
}

/**
 * Makes the restart state of one supervised thing under `policy`.
 *
 * @since 0.2.0
 * @category intensity
 */
export const backoffs = (policy: Resolved): Backoffs => {
  type Step = (now: number, input: unknown) => Effect.Effect<[unknown, Duration.Duration], unknown>
  let step: Step | undefined
  let last: number | undefined
  let attempt = 0
  return {
    next: (now) =>
      Effect.suspend(() => {
        const quiet = last === undefined || now - last >= policy.withinMillis
        last = now
        if (quiet) {
          step = undefined
          attempt = 1
          return Effect.succeed({ delayMillis: 0, attempt })
        }
        attempt++
        const current = attempt
        return Effect.gen(function* () {
          step ??= (yield* Schedule.toStep(policy.schedule)) as Step
          return yield* step(now, current).pipe(
            Effect.map(([, delay]) => ({ delayMillis: Math.round(Duration.toMillis(delay)), attempt: current })),
            // A schedule that ends (Schedule.recurs, upTo…) gives up, as the intensity limit would.
            Effect.catchCause((cause) =>
              Cause.hasInterrupts(cause) ? Effect.failCause(cause) : Effect.succeed(undefined)
            )
          )
        }) as Effect.Effect<{ readonly delayMillis: number; readonly attempt: number } | undefined>
      })
  }
}

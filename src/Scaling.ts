/**
 * Autoscaling: how many threads or processes an Env runs, decided from what
 * they are doing. The decision is a pure function of a policy, the bounds,
 * the previous decision's state and one sample of the Envs' load, so it is
 * tested on sample sequences alone; the pool in `effect-corps/node` samples
 * its Envs every `sampleMillis` and applies it, and the same function sizes
 * cluster runners from runner samples ({@link recommend}).
 *
 * A policy is data in the placement, beside a `count` range:
 *
 * ```json
 * {
 *   "envs": {
 *     "cpu": {
 *       "kind": "thread",
 *       "count": { "min": 1, "max": 8 },
 *       "scaling": { "targetUtilization": 0.75, "downAfterMillis": 5000 }
 *     }
 *   }
 * }
 * ```
 *
 * Two signals, read together (docs/scaling.md):
 * - calls in flight, known at the caller at once: the quick signal of a
 *   burst (`inFlightPerEnv` calls per Env are enough work to keep it busy);
 * - event-loop utilisation measured inside each Env: it confirms that the
 *   calls in flight really keep the Envs busy (calls waiting on I/O do not
 *   ask for more Envs), and it decides scaling down.
 *
 * Pressure must last `upAfterMillis` before scaling up (short spikes are
 * ignored); slack must last `downAfterMillis` before scaling down; between
 * the two thresholds (a band of width `hysteresis`) nothing changes, so the
 * size does not flap around the target.
 *
 * @since 0.3.0
 */
import { Schema } from "effect"

const Millis = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const Step = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const Fraction = Schema.Finite.check(Schema.isGreaterThan(0), Schema.isLessThanOrEqualTo(1))

/**
 * A scaling policy, as written in a placement. Every field is optional; the
 * defaults are {@link defaults}.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Policy = Schema.Struct({
  /** Event-loop utilisation (0 to 1] each Env should run at: above it the Env grows. */
  targetUtilization: Schema.optional(Fraction),
  /** Calls in flight per Env that keep one Env busy: more in flight than `size · inFlightPerEnv` is pressure. */
  inFlightPerEnv: Schema.optional(Step),
  /** How long pressure must last before the Env grows (short spikes are ignored). */
  upAfterMillis: Schema.optional(Millis),
  /** How long the Envs must be underused before the Env shrinks (the idle cooldown). */
  downAfterMillis: Schema.optional(Millis),
  /** At most this many Envs are added by one decision. */
  maxStepUp: Schema.optional(Step),
  /** At most this many Envs are removed by one decision. */
  maxStepDown: Schema.optional(Step),
  /** How often the Envs are sampled and a decision is made. */
  sampleMillis: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(10))),
  /**
   * The width of the band between growing and shrinking, as a share of the
   * target: the Env shrinks only when the remaining Envs would run below
   * `targetUtilization · (1 - hysteresis)`.
   */
  hysteresis: Schema.optional(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(1)))
})

/**
 * @since 0.3.0
 * @category models
 */
export type Policy = typeof Policy.Type

/**
 * A policy with every field set.
 *
 * @since 0.3.0
 * @category models
 */
export type Resolved = { readonly [K in keyof Policy]-?: Exclude<Policy[K], undefined> }

/**
 * The defaults of a policy: grow after 200 ms of pressure, shrink after 5 s
 * of slack, sample every 100 ms, aim at 75% utilisation with 4 calls in
 * flight per Env, add up to 4 Envs and remove 1 per decision.
 *
 * @since 0.3.0
 * @category constructors
 */
export const defaults: Resolved = {
  targetUtilization: 0.75,
  inFlightPerEnv: 4,
  upAfterMillis: 200,
  downAfterMillis: 5000,
  maxStepUp: 4,
  maxStepDown: 1,
  sampleMillis: 100,
  hysteresis: 0.25
}

/**
 * A policy with its absent fields set to {@link defaults}.
 *
 * @since 0.3.0
 * @category constructors
 */
export const resolve = (policy?: Policy | undefined): Resolved => ({
  targetUtilization: policy?.targetUtilization ?? defaults.targetUtilization,
  inFlightPerEnv: policy?.inFlightPerEnv ?? defaults.inFlightPerEnv,
  upAfterMillis: policy?.upAfterMillis ?? defaults.upAfterMillis,
  downAfterMillis: policy?.downAfterMillis ?? defaults.downAfterMillis,
  maxStepUp: policy?.maxStepUp ?? defaults.maxStepUp,
  maxStepDown: policy?.maxStepDown ?? defaults.maxStepDown,
  sampleMillis: policy?.sampleMillis ?? defaults.sampleMillis,
  hysteresis: policy?.hysteresis ?? defaults.hysteresis
})

/**
 * The smallest and largest size an Env may have.
 *
 * @since 0.3.0
 * @category models
 */
export interface Bounds {
  readonly min: number
  readonly max: number
}

/**
 * What one Env (or one cluster runner) was doing when it was sampled.
 *
 * @since 0.3.0
 * @category models
 */
export interface EnvSample {
  /** Calls sent to it and not yet answered. */
  readonly inFlight: number
  /** Its event loop's utilisation (0 to 1) since the previous sample; `undefined` when unknown. */
  readonly utilization: number | undefined
}

/**
 * One sample of every Env in service, taken at `at` (epoch or any
 * monotonic milliseconds: only differences matter).
 *
 * @since 0.3.0
 * @category models
 */
export interface Sample {
  readonly at: number
  readonly envs: ReadonlyArray<EnvSample>
}

/**
 * What the decision remembers between samples.
 *
 * @since 0.3.0
 * @category models
 */
export interface State {
  /** The size in service. */
  readonly size: number
  /** Since when the Envs have been under pressure without a break, if they are. */
  readonly pressureSince: number | undefined
  /** Since when the Envs have been underused without a break, if they are. */
  readonly slackSince: number | undefined
}

/**
 * The state of an Env that starts with `size` Envs.
 *
 * @since 0.3.0
 * @category constructors
 */
export const initial = (size: number): State => ({ size, pressureSince: undefined, slackSince: undefined })

/**
 * The outcome of one decision: the next state, the size wanted (equal to
 * the current size when nothing changes) and why.
 *
 * @since 0.3.0
 * @category models
 */
export interface Decision {
  readonly state: State
  readonly target: number
  readonly direction: "up" | "down" | "hold"
  readonly reason: string
}

const clamp = (n: number, bounds: Bounds) => Math.min(bounds.max, Math.max(bounds.min, n))

/**
 * Decides the size of an Env from one more sample.
 *
 * - Demand, in Envs: the larger of `ceil(calls in flight / inFlightPerEnv)`
 *   (counted only while the Envs are busy, or before utilisation is known)
 *   and `ceil(sum of utilisations / targetUtilization)`.
 * - Demand above the size for `upAfterMillis` → grow towards the demand, by
 *   at most `maxStepUp`; the pressure clock then starts again.
 * - The same demand measured against the lower threshold
 *   (`targetUtilization · (1 - hysteresis)`, and half of `inFlightPerEnv`
 *   while the Envs are busy) below the size for `downAfterMillis` → shrink
 *   towards it by at most
 *   `maxStepDown`, then once per sample while the slack lasts.
 * - The target is always within `bounds`.
 *
 * @example
 * ```ts
 * import { Scaling } from "effect-corps"
 *
 * const policy = Scaling.resolve({ upAfterMillis: 100 })
 * let state = Scaling.initial(1)
 * for (const at of [0, 50, 100]) {
 *   const decision = Scaling.decide(policy, { min: 1, max: 4 }, state, { at, envs: [{ inFlight: 16, utilization: 1 }] })
 *   state = decision.state
 * }
 * ```
 *
 * @since 0.3.0
 * @category deciding
 */
export const decide = (policy: Resolved, bounds: Bounds, state: State, sample: Sample): Decision => {
  const size = state.size
  if (size < bounds.min || size > bounds.max) {
    const target = clamp(size, bounds)
    return {
      state: { size: target, pressureSince: undefined, slackSince: undefined },
      target,
      direction: target > size ? "up" : "down",
      reason: `size ${size} outside ${bounds.min}..${bounds.max}`
    }
  }
  let inFlight = 0
  let utilization = 0
  let known = 0
  for (const env of sample.envs) {
    inFlight += env.inFlight
    if (env.utilization !== undefined) {
      utilization += env.utilization
      known++
    }
  }
  // Envs not sampled yet (just started) count as running at the mean of the others.
  const totalUtilization = known === 0 ? undefined : (utilization / known) * size
  const mean = totalUtilization === undefined ? undefined : totalUtilization / size
  const lower = policy.targetUtilization * (1 - policy.hysteresis)
  // Calls in flight ask for Envs only while the Envs are busy: calls waiting on I/O need no more threads.
  const busy = mean === undefined || mean >= lower
  const upDemand = Math.max(
    busy ? Math.ceil(inFlight / policy.inFlightPerEnv) : 0,
    totalUtilization === undefined ? 0 : Math.ceil(totalUtilization / policy.targetUtilization - 1e-9)
  )
  // Calls in flight hold the size only while they keep the Envs busy, and only above half of what they need.
  const downDemand = Math.max(
    busy ? Math.ceil((2 * inFlight) / policy.inFlightPerEnv) : 0,
    totalUtilization === undefined ? size : Math.ceil(totalUtilization / lower - 1e-9)
  )
  const figures = `${inFlight} in flight, utilisation ${mean === undefined ? "unknown" : mean.toFixed(2)} over ${size}`
  const at = sample.at

  if (upDemand > size && size < bounds.max) {
    const since = state.pressureSince ?? at
    const lasted = at - since
    if (lasted >= policy.upAfterMillis) {
      const target = clamp(Math.min(upDemand, size + policy.maxStepUp), bounds)
      return {
        state: { size: target, pressureSince: undefined, slackSince: undefined },
        target,
        direction: "up",
        reason: `demand ${upDemand} for ${lasted} ms (${figures})`
      }
    }
    return hold({ size, pressureSince: since, slackSince: undefined }, `pressure for ${lasted} ms (${figures})`)
  }
  if (downDemand < size && size > bounds.min) {
    const since = state.slackSince ?? at
    const lasted = at - since
    if (lasted >= policy.downAfterMillis) {
      const target = clamp(Math.max(downDemand, size - policy.maxStepDown), bounds)
      return {
        // The slack clock keeps running: the next step follows at the next sample if the slack lasts.
        state: { size: target, pressureSince: undefined, slackSince: since },
        target,
        direction: "down",
        reason: `demand ${downDemand} for ${lasted} ms (${figures})`
      }
    }
    return hold({ size, pressureSince: undefined, slackSince: since }, `slack for ${lasted} ms (${figures})`)
  }
  return hold({ size, pressureSince: undefined, slackSince: undefined }, `steady (${figures})`)
}

const hold = (state: State, reason: string): Decision => ({ state, target: state.size, direction: "hold", reason })

/**
 * The load figure of one cluster runner (or any host that runs Envs), as the
 * process that supervises runners reads it.
 *
 * @since 0.3.0
 * @category models
 */
export interface RunnerLoad extends EnvSample {
  readonly runner: string
}

/**
 * A recommended runner count for a cluster, from one sample of every runner:
 * {@link decide} over runner samples, so runners are sized by the same rules
 * (and with the same hysteresis) as threads. Feed it one sample per
 * `sampleMillis` and keep the returned state; start from {@link initial}
 * with the current runner count.
 *
 * @since 0.3.0
 * @category deciding
 */
export const recommend = (
  policy: Resolved,
  bounds: Bounds,
  state: State,
  at: number,
  runners: ReadonlyArray<RunnerLoad>
): Decision => decide(policy, bounds, { ...state, size: runners.length }, { at, envs: runners })

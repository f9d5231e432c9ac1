/**
 * The scaler of one scaling thread or process Env: a fiber that samples the
 * Envs in service every `sampleMillis` (calls in flight at the caller,
 * event-loop utilisation from inside each Env), asks the pure decision
 * (src/Scaling.ts) for a size, and applies it to the pool:
 *
 * - up: draining slots come back first, then the warm spare, then fresh
 *   starts;
 * - down: the highest slots drain. A draining slot takes no new calls and
 *   no new keys; its instances whose state is persisted are passivated
 *   (they resume on another slot at their next call), the others are waited
 *   for until they passivate on their own (`passivateAfter`). Once it holds
 *   no instance and no call, it is stopped (`EnvRemoved`). A slot whose
 *   instances never passivate stays, draining, until the load brings it
 *   back into service (docs/scaling.md).
 *
 * Only a pool whose count is a range has a scaler: a fixed-size pool runs
 * exactly as before, with no sampling at all.
 */
import { Effect, type Scope } from "effect"
import type * as CorpsEvent from "../CorpsEvent.ts"
import type { EventHub } from "../internal/events.ts"
import * as Scaling from "../Scaling.ts"
import type { Directory } from "./directory.ts"
import type { EnvPool } from "./EnvPool.ts"
import { CONTROL } from "./envInit.ts"

/** What a scaler needs. */
export interface ScalerOptions {
  readonly pool: EnvPool
  readonly corps: string
  readonly envName: string
  readonly bounds: Scaling.Bounds
  readonly policy: Scaling.Resolved
  readonly events: EventHub | undefined
  /** The directories of the Concs placed by key in this Env (drained with their slots). */
  readonly directories: ReadonlyArray<Directory>
  /** Conc Workers whose state is persisted: their idle instances are passivated to drain a slot. */
  readonly persisted: ReadonlyArray<string>
}

/** What the Env answers to `release`: for each Worker asked about, the keys whose instances are still live. */
export type Released = Readonly<Record<string, ReadonlyArray<string>>>

/** Starts the scaler of `options.pool`, in the current scope (closing it stops the scaler). */
export const start = (options: ScalerOptions): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const { pool, policy, bounds } = options
    const emit = (event: CorpsEvent.CorpsEvent) =>
      options.events === undefined ? Effect.void : options.events.emit(event)
    let state = Scaling.initial(pool.active.length)

    /**
     * One slot's sample. An Env that cannot answer its load call within a
     * sample interval is saturated (its event loop is busy): it counts as
     * fully used.
     */
    const sampleOf = (index: number) =>
      Effect.suspend(() => {
        // Read before the load call: its answer comes in the same batch as the replies of the calls in flight.
        const inFlight = pool.client(index).inFlight
        return pool.load(index).pipe(
          Effect.timeoutOrElse({ duration: policy.sampleMillis, orElse: () => Effect.succeed({ utilization: 1 }) }),
          Effect.map((load) => ({
            index,
            inFlight,
            ...(load === undefined ? {} : { utilization: load.utilization })
          }))
        )
      })

    const step = Effect.gen(function* () {
      // A pool stopped by supervision starts nothing any more: no decision to make.
      if (pool.halted || pool.closing) return
      const active = pool.active
      const samples = yield* Effect.forEach(active, sampleOf, { concurrency: "unbounded" })
      state = { ...state, size: active.length }
      const decision = Scaling.decide(policy, bounds, state, {
        at: Date.now(),
        envs: samples.map((s) => ({ inFlight: s.inFlight, utilization: s.utilization }))
      })
      state = decision.state
      if (decision.direction === "hold") return
      yield* emit({
        _tag: "EnvScaled",
        corps: options.corps,
        at: Date.now(),
        env: options.envName,
        from: active.length,
        to: decision.target,
        direction: decision.direction,
        reason: decision.reason,
        samples
      })
      if (decision.direction === "up") {
        const grown = yield* pool.grow(decision.target - active.length)
        state = { ...state, size: active.length + grown.added }
        // The next decision tries again.
        for (const failure of grown.failures) {
          yield* Effect.logWarning(`effect-corps: a new Env of ${options.envName} did not start`, failure)
        }
        return
      }
      // The highest slots go first: the lowest ones hold the pinned Workers and the fixed replicas.
      const leaving = pool.active.slice(decision.target).toReversed()
      for (const index of leaving) {
        pool.drain(index)
        if (pool.draining(index)) yield* Effect.forkIn(drain(index), scope)
      }
    })

    /** Empties the draining slot `index`, then removes it; stops early if the slot is put back in service. */
    const drain = (index: number): Effect.Effect<void> =>
      Effect.gen(function* () {
        while (pool.draining(index)) {
          const holding = options.directories.filter((directory) => directory.keysOn(index).length > 0)
          if (holding.length > 0) {
            const released = yield* release(index, holding)
            if (!pool.draining(index)) return
            for (const directory of holding) {
              const live = new Set(released?.[directory.worker] ?? directory.keysOn(index))
              for (const key of directory.keysOn(index)) if (!live.has(key)) directory.dropIfIdle(key)
            }
          }
          const empty = options.directories.every((directory) => directory.keysOn(index).length === 0)
          if (empty && pool.client(index).inFlight === 0) {
            yield* pool.remove(index)
            return
          }
          yield* Effect.sleep(policy.sampleMillis)
        }
      })

    /**
     * Asks the Env in slot `index` to passivate its idle persisted instances
     * and to tell which instances of `holding` are still live; `undefined`
     * when it cannot answer (then every key counts as live).
     */
    const release = (index: number, holding: ReadonlyArray<Directory>) =>
      pool
        .client(index)
        .call({
          worker: CONTROL,
          key: "",
          method: "release",
          payload: {
            workers: holding.map((directory) => directory.worker),
            passivate: options.persisted
          }
        })
        .pipe(
          Effect.map((reply) =>
            reply._tag === "Success" && typeof reply.value === "object" && reply.value !== null
              ? (reply.value as Released)
              : undefined
          ),
          Effect.catchTag("CallLost", () => Effect.undefined)
        )

    yield* Effect.forkIn(
      Effect.forever(Effect.andThen(Effect.sleep(policy.sampleMillis), step)).pipe(
        Effect.catchCause((cause) =>
          Effect.logError(`effect-corps: the scaler of Env ${options.envName} stopped`, cause)
        )
      ),
      scope
    )
  })

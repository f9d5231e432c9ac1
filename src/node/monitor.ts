/**
 * Monitoring of one thread or process Env pool, from the caller: about once
 * a second (the `intervalMillis` setting) it collects each slot's figures
 * over the slot's own link — the calls its Workers made since the previous
 * collection, their instances and mailboxes, and where and how busy it runs
 * — and merges them into the caller's Recorder, so the caller's registry
 * shows the whole Corps. Slot states and restarts come from the pool's
 * events (one event stream feeds logs, metrics and the dashboard).
 *
 * Runs only while metrics are on; one control call per slot per interval.
 */
import { Effect, Schedule, type Scope, Stream } from "effect"
import type { CorpsEvent } from "../CorpsEvent.ts"
import type { EventHub } from "../internal/events.ts"
import type { Delta, Recorder } from "../internal/recorder.ts"
import * as Metrics from "../monitoring/metrics.ts"
import type { EnvPool } from "./EnvPool.ts"
import type { EnvLoad } from "./load.ts"

/** What a slot answers to the `metrics` control call (src/node/envMain.ts). */
export interface SlotFigures {
  readonly load: EnvLoad
  /** Undefined (null on the wire) when the Env records no metrics. */
  readonly figures: Delta | null
}

type State = (typeof Metrics.slotStates)[number]

/** What the caller knows of one slot. */
interface SlotView {
  state: State
  restarts: number
  load: EnvLoad | undefined
}

/** Watches the slots of `pool` until the scope closes. */
export const watch = (options: {
  readonly pool: EnvPool
  readonly envName: string
  /** Slots watched: 0 to `size - 1` (a scaling pool's maximum). */
  readonly size: number
  /** Slots started with the pool (the others start stopped); `size` when absent. */
  readonly started?: number | undefined
  readonly corpsId: string
  readonly corpsName: string
  readonly recorder: Recorder
  readonly events: EventHub
  readonly intervalMillis: number
}): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { pool, envName, recorder } = options
    // The pool has started every slot when it is made.
    const started = options.started ?? options.size
    const slots: Array<SlotView> = Array.from({ length: options.size }, (_, index) => ({
      state: index < started ? "serving" : "stopped",
      restarts: 0,
      load: undefined
    }))
    for (const [index, slot] of slots.entries()) {
      const attributes = {
        [Metrics.Attribute.corps]: options.corpsName,
        [Metrics.Attribute.env]: envName,
        [Metrics.Attribute.index]: String(index)
      }
      for (const state of Metrics.slotStates)
        recorder.registerGauge(Metrics.slotState, { ...attributes, [Metrics.Attribute.state]: state }, () =>
          (slot.state === "serving" && pool.draining(index) ? "draining" : slot.state) === state ? 1 : 0
        )
      recorder.registerGauge(Metrics.slotPid, attributes, () => slot.load?.pid ?? 0)
      recorder.registerGauge(Metrics.slotThreadId, attributes, () => slot.load?.threadId ?? 0)
      recorder.registerGauge(Metrics.slotUtilization, attributes, () => slot.load?.utilization ?? 0)
      recorder.registerGauge(Metrics.slotHeapUsed, attributes, () => slot.load?.heapUsed ?? 0)
      recorder.registerGauge(Metrics.slotInFlight, attributes, () =>
        slot.state === "serving" ? pool.client(index).inFlight : 0
      )
      recorder.registerCounter(Metrics.slotRestarts, attributes, () => slot.restarts)
    }

    const onEvent = (event: CorpsEvent): void => {
      if (event.corps !== options.corpsId || !("env" in event) || event.env !== envName) return
      switch (event._tag) {
        case "EnvCrashed":
        case "EnvRestarting": {
          const slot = slots[event.index]
          if (slot !== undefined) slot.state = "restarting"
          recorder.forgetSlot(slotKey(envName, event.index))
          return
        }
        case "EnvStarted": {
          const slot = slots[event.index]
          if (slot === undefined) return
          slot.state = "serving"
          if (event.attempt > 0) slot.restarts++
          return
        }
        // Scaled down: the slot no longer exists.
        case "EnvRemoved": {
          const slot = slots[event.index]
          if (slot !== undefined) slot.state = "stopped"
          recorder.forgetSlot(slotKey(envName, event.index))
          return
        }
        case "SupervisionExhausted": {
          // The whole Env gave up (a Worker's own policy stops only that Worker).
          if (event.worker !== undefined) return
          for (const [index, slot] of slots.entries()) {
            slot.state = "stopped"
            recorder.forgetSlot(slotKey(envName, index))
          }
        }
      }
    }
    yield* Effect.forkScoped(Stream.runForEach(options.events.stream, (event) => Effect.sync(() => onEvent(event))))

    const collect = Effect.forEach(
      slots,
      (slot, index) =>
        Effect.map(pool.metrics(index), (answer) => {
          const figures = answer as SlotFigures | undefined
          if (figures === undefined) return
          slot.load = figures.load
          if (figures.figures !== null) recorder.merge(envName, slotKey(envName, index), figures.figures)
        }),
      { discard: true }
    )
    yield* Effect.forkScoped(Effect.repeat(collect, Schedule.spaced(options.intervalMillis)))
  })

const slotKey = (envName: string, index: number): string => `${envName}#${index}`

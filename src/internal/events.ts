/**
 * The event hub of a Corps tree: every runtime action is published here (for
 * `Corps.events`) and logged once, annotated with its Worker and Env. A nested
 * Corps uses the hub of the Corps around it, so one stream shows the whole tree.
 */
import { Context, Effect, PubSub, Stream } from "effect"
import type { CorpsEvent } from "../CorpsEvent.ts"

/** Events for which nobody subscribed are dropped: publishing never waits and never grows memory. */
const CAPACITY = 4096

/** Publishes and logs the events of one Corps tree. */
export class EventHub {
  readonly pubsub: PubSub.PubSub<CorpsEvent>
  constructor(pubsub: PubSub.PubSub<CorpsEvent>) {
    this.pubsub = pubsub
  }

  /** Publishes `event` and logs it (see {@link logEvent}) in the caller's fiber. */
  emit(event: CorpsEvent): Effect.Effect<void> {
    return PubSub.publish(this.pubsub, event).pipe(Effect.andThen(logEvent(event)))
  }

  /** The events published from now on. */
  get stream(): Stream.Stream<CorpsEvent> {
    return Stream.fromPubSub(this.pubsub)
  }
}

/**
 * Logs `event` once, annotated with its Corps, Worker and Env: Warning for
 * losses and give-ups, Debug for routine ones, Info otherwise.
 */
export const logEvent = (event: CorpsEvent): Effect.Effect<void> => {
  const annotations: Record<string, unknown> = { corps: event.corps, event: event._tag }
  if ("env" in event && event.env !== undefined) annotations.env = event.env
  if ("worker" in event && event.worker !== undefined) annotations.worker = event.worker
  // An Env starting with its Corps is routine: logged at Debug, so programs' output stays theirs.
  const level = event._tag === "EnvStarted" && event.attempt === 0 ? "Debug" : severity[event._tag]
  const log =
    level === "Warning"
      ? Effect.logWarning(describe(event))
      : level === "Debug"
        ? Effect.logDebug(describe(event))
        : Effect.logInfo(describe(event))
  return Effect.annotateLogs(log, annotations)
}

const severity: Record<CorpsEvent["_tag"], "Debug" | "Info" | "Warning"> = {
  EnvStarted: "Info",
  SpareReady: "Debug",
  EnvCrashed: "Warning",
  EnvRestarting: "Info",
  SupervisionExhausted: "Warning",
  CallRedelivered: "Info",
  CallQuarantined: "Warning",
  InstanceRestarted: "Warning",
  EnvScaled: "Info",
  EnvRemoved: "Info",
  // Routine (an idle instance gives its memory back), and there may be thousands per sweep: Debug.
  InstancePassivated: "Debug"
}

const describe = (event: CorpsEvent): string => {
  switch (event._tag) {
    case "EnvStarted":
      return `effect-corps: Env ${event.env}#${event.index} started${event.attempt > 0 ? ` (restart ${event.attempt})` : ""}`
    case "SpareReady":
      return `effect-corps: a spare of Env ${event.env} is ready`
    case "EnvCrashed":
      return `effect-corps: Env ${event.env}#${event.index} ${event.reason}: ${event.detail}`
    case "EnvRestarting":
      return `effect-corps: Env ${event.env}#${event.index} restarts in ${event.delayMillis} ms (attempt ${event.attempt})`
    case "SupervisionExhausted":
      return `effect-corps: ${event.worker ?? `Env ${event.env}`} gave up after ${event.restarts} restarts in ${event.withinMillis} ms (${event.outcome}): ${event.detail}`
    case "CallRedelivered":
      return `effect-corps: ${event.worker}.${event.method} sent again (attempt ${event.attempt})`
    case "CallQuarantined":
      return `effect-corps: ${event.worker}.${event.method} quarantined after taking down its Env ${event.crashes} times`
    case "InstanceRestarted":
      return `effect-corps: ${event.worker}[${event.key}] rebuilt: ${event.detail}`
    case "EnvScaled":
      return `effect-corps: Env ${event.env} scaled ${event.direction} from ${event.from} to ${event.to}: ${event.reason}`
    case "EnvRemoved":
      return `effect-corps: Env ${event.env}#${event.index} removed (${event.reason})`
    case "InstancePassivated":
      return `effect-corps: ${event.worker}[${event.key}] passivated${event.env === undefined ? "" : ` in Env ${event.env}`}${event.idleMillis === undefined ? " (drained)" : ` after ${event.idleMillis} ms idle`}`
  }
}

/** The hub of the Corps tree in context (the outermost Corps makes it). */
export class CorpsEvents extends Context.Service<CorpsEvents, EventHub>()("effect-corps/CorpsEvents") {}

/** A new hub. */
export const makeHub: Effect.Effect<EventHub> = Effect.map(
  PubSub.sliding<CorpsEvent>(CAPACITY),
  (pubsub) => new EventHub(pubsub)
)

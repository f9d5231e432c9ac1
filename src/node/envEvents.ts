/**
 * Events raised inside a thread or process Env (an instance passivated or
 * rebuilt there) reach the caller's `Corps.events`: the Env sends each as an
 * `event` control call (src/node/envMain.ts); the caller's side of the link
 * checks it against the CorpsEvent Schema and emits it on the Corps' hub,
 * which logs it too.
 */
import { Effect, Schema } from "effect"
import { CorpsEvent } from "../CorpsEvent.ts"
import type { EventHub } from "../internal/events.ts"
import * as Wire from "../internal/wire.ts"
import { CONTROL } from "./envInit.ts"

const decodeEvent = Schema.decodeUnknownEffect(CorpsEvent)

/**
 * What the caller serves to one Env: its control calls (events) here, every
 * other call to `dispatch` (the caller's dispatcher).
 */
export const servingEnv =
  (
    dispatch: (call: Wire.Call) => Effect.Effect<Wire.Exit>,
    events: EventHub | undefined
  ): ((call: Wire.Call) => Effect.Effect<Wire.Exit>) =>
  (call) =>
    call.worker === CONTROL ? fromEnv(call, events) : dispatch(call)

const done = Wire.success(null)

const fromEnv = (call: Wire.Call, events: EventHub | undefined): Effect.Effect<Wire.Exit> => {
  if (call.method !== "event") return Effect.succeed(Wire.success(`unknown control call ${call.method}`))
  return decodeEvent(call.payload).pipe(
    Effect.matchEffect({
      onSuccess: (event) => (events === undefined ? Effect.void : events.emit(event)),
      // An Env built from another version of this package: say so once per event rather than fail its sender.
      onFailure: (error) => Effect.logWarning(`effect-corps: an Env sent an event this caller cannot read: ${error}`)
    }),
    Effect.as(done)
  )
}

/**
 * The Workers of the host benchmark: a trivial `inc` (round-trip cost), and
 * a Tally with a Forwarder that calls it through a handle (handles across
 * hosts).
 */
import { Effect, Schema } from "effect"
import { Worker } from "../../src/index.ts"

/** A stateless Worker: `inc` is the round trip and nothing else. */
export class Inc extends Worker.Service<Inc>()("Inc", {
  inc: { payload: { n: Schema.Number }, success: Schema.Number }
}) {}

/** Inc's implementation. */
export const IncLive = Inc.func({ inc: ({ n }) => n + 1 })

/** A keyed counter. */
export class Tally extends Worker.Service<Tally>()("Tally", {
  add: { payload: { by: Schema.Number }, success: Schema.Number }
}) {}

/** Tally's implementation. */
export const TallyLive = Tally.conc(
  Effect.sync(() => {
    let total = 0
    return { add: ({ by }) => (total += by) }
  })
)

/** Calls the Tally behind a handle it is given. */
export class Forwarder extends Worker.Service<Forwarder>()("Forwarder", {
  forward: { payload: { target: Tally.Handle, by: Schema.Number }, success: Schema.Number }
}) {}

/** Forwarder's implementation. */
export const ForwarderLive = Forwarder.func({
  forward: ({ target, by }) => Effect.orDie(target.add({ by }))
})

/** Every Worker of the host benchmark. */
export const members = [IncLive, TallyLive, ForwarderLive] as const

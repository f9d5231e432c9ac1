/**
 * The id of the message a cluster handler is processing.
 *
 * @since 0.1.0
 */
import { Context } from "effect"

/**
 * The id of the message a handler is processing, in the handler's context on
 * cluster runners. A persisted message is delivered **at least once**: when a
 * runner dies after running a handler but before its reply was stored, the
 * message is delivered again, with the same id, by the entity's next home.
 * A handler whose effect must happen exactly once records this id with its
 * effect (a unique column, `ON CONFLICT DO NOTHING`) — see docs/cluster.md.
 * Only persisted methods get one.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DeliveryId } from "effect-corps/cluster"
 *
 * const id = Effect.serviceOption(DeliveryId) // Option<string>: None outside a persisted cluster call
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class DeliveryId extends Context.Service<DeliveryId, string>()("effect-corps/cluster/DeliveryId") {}

/**
 * Lost calls stay lost.
 *
 * effect/cluster re-sends a volatile request whose runner became unreachable
 * (`RunnerUnavailable`) to the entity's next home. For a method that is not
 * idempotent that is wrong twice over: the first delivery may already have
 * taken effect, and the caller waits through the whole failover. This
 * `Runners` layer wraps effect/cluster's own and answers such a request with a
 * defect carrying `RunnerUnavailable` instead, which the caller's Target turns
 * into `CallLost` (see `Entities.toCallError`). Persisted and idempotent
 * methods keep effect/cluster's behaviour.
 */
import { Context, Effect, Exit, Layer } from "effect"
import { type MessageStorage, Reply, Runners, type ShardingConfig, Snowflake } from "effect/cluster"
import { DeliveryAnnotation } from "./Entities.ts"

/**
 * effect/cluster's RPC `Runners`, with lost `once` requests failed rather
 * than re-sent.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRunners: Layer.Layer<
  Runners.Runners,
  never,
  MessageStorage.MessageStorage | Runners.RpcClientProtocol | ShardingConfig.ShardingConfig
> = Layer.effect(
  Runners.Runners,
  Effect.gen(function* () {
    const inner = yield* Runners.makeRpc
    const snowflakes = yield* Snowflake.Generator
    const send: Runners.Runners["Service"]["send"] = (options) => {
      const message = options.message
      if (
        message._tag !== "OutgoingRequest" ||
        Context.get(message.rpc.annotations as Context.Context<never>, DeliveryAnnotation) !== "once"
      ) {
        return inner.send(options)
      }
      return Effect.catchTag(inner.send(options), "RunnerUnavailable", (error) =>
        message.respond(
          new Reply.WithExit({
            id: snowflakes.nextUnsafe(),
            requestId: message.envelope.requestId,
            exit: Exit.die(error)
          })
        )
      )
    }
    return Runners.Runners.of({ ...inner, send })
  })
).pipe(Layer.provide(Snowflake.layerGenerator))

/**
 * Effect's stock RPC over a socket, the host benchmark's second baseline:
 * one `Inc` RPC, served by `RpcServer` with the socket protocol on
 * `NodeSocketServer`, called by `RpcClient` with the socket protocol on
 * `NodeSocket` (ndjson serialization). Run as a script, it serves and prints
 * its port.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Effect, Layer, Schema } from "effect"
import * as Rpc from "effect/rpc/Rpc"
import * as RpcClient from "effect/rpc/RpcClient"
import * as RpcGroup from "effect/rpc/RpcGroup"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import * as RpcServer from "effect/rpc/RpcServer"
import * as SocketServer from "effect/socket/SocketServer"

/** The one RPC. */
export class IncRpcs extends RpcGroup.make(
  Rpc.make("Inc", { payload: { n: Schema.Number }, success: Schema.Number })
) {}

/** A client of the server at `port`, in the current scope (its protocol and socket too). */
export const client = (port: number) =>
  Effect.gen(function* () {
    const protocol = yield* Layer.build(
      RpcClient.layerProtocolSocket().pipe(
        Layer.provide(NodeSocket.layerNet({ host: "127.0.0.1", port })),
        Layer.provide(RpcSerialization.layerNdjson)
      )
    )
    return yield* RpcClient.make(IncRpcs).pipe(Effect.provideContext(protocol))
  })

if (import.meta.main) {
  const handlers = IncRpcs.toLayer({ Inc: ({ n }) => Effect.succeed(n + 1) })
  const server = RpcServer.layer(IncRpcs).pipe(
    Layer.provide(handlers),
    Layer.provide(RpcServer.layerProtocolSocketServer),
    Layer.provide(RpcSerialization.layerNdjson)
  )
  const main = Effect.gen(function* () {
    yield* Layer.build(server)
    const socketServer = yield* SocketServer.SocketServer
    const address = socketServer.address
    process.stdout.write(`${"port" in address ? address.port : 0}\n`)
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(NodeSocketServer.layer({ port: 0, host: "127.0.0.1" })))
  process.on("disconnect", () => process.exit(0))
  Effect.runFork(main)
}

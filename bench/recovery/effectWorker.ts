/**
 * effect's own worker pool, for comparison with effect-corps' recovery: a
 * worker thread serving `Who` (its thread id) and `Exit` (ends the thread)
 * through `RpcServer.layerProtocolWorkerRunner`, the entry
 * `RpcClient.layerProtocolWorker` respawns after a crash.
 */
import { threadId, workerData } from "node:worker_threads"
import * as NodeWorkerRunner from "@effect/platform-node/NodeWorkerRunner"
import { Effect, Layer, Schema } from "effect"
import { Rpc, RpcGroup, RpcServer } from "effect/rpc"

export class Who extends Rpc.make("Who", { success: Schema.Number }) {}
export class Exit extends Rpc.make("Exit") {}
export const Group = RpcGroup.make(Who, Exit)

/** Set by the bench in the workers it spawns; the bench itself imports this module for `Group` only. */
export const ROLE = "effect-recovery"

if ((workerData as { role?: string } | null)?.role === ROLE) {
  const Handlers = Group.toLayer({
    Who: () => Effect.succeed(threadId),
    Exit: () => Effect.sync(() => process.exit(1))
  })
  const server = RpcServer.layer(Group, { disableTracing: true }).pipe(
    Layer.provide([Handlers, RpcServer.layerProtocolWorkerRunner.pipe(Layer.provide(NodeWorkerRunner.layer))])
  )
  Effect.runFork(Layer.launch(server))
}

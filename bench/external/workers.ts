/** The Worker of the cross-program benchmark: imported by the bench, the served program and host Envs. */
import { Effect, Schema } from "effect"
import { Worker } from "../../src/index.ts"

export class Inc extends Worker.Service<Inc>()("Inc", {
  inc: { payload: { n: Schema.Number }, success: Schema.Number }
}) {}

export const IncLive = Inc.func({ inc: ({ n }) => Effect.succeed(n + 1) })

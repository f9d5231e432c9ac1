/**
 * How effect-corps' encoded call outcomes ride the transport's reply frames,
 * and the control calls between a caller and its Envs.
 */
import { Effect } from "effect"
import { type EncodedExit, encodeCallFailure } from "../internal/codec.ts"
import type { Request } from "../internal/dispatch.ts"
import { defectError } from "../internal/invoke.ts"
import type * as Frame from "../internal/transport/Frame.ts"

/** The pseudo-Worker of control calls (`ready`, `shutdown`): no user Worker can have this name. */
export const CONTROL = "$corps"

/** An outcome as a reply: failures carry whether they are effect-corps' own errors. */
export const toReply = (exit: EncodedExit): Frame.ReplyExit => {
  switch (exit._tag) {
    case "Success":
      return exit
    case "Failure":
      return { _tag: "Failure", error: [exit.callError ? 1 : 0, exit.error] }
    case "Interrupted":
      return exit
  }
}

/** A reply as an outcome. A transport-level defect (the serving side died) becomes WorkerDefect. */
export const fromReply = (reply: Frame.ReplyExit, request: Request): EncodedExit => {
  switch (reply._tag) {
    case "Success":
      return reply
    case "Failure": {
      const [callError, error] = reply.error as [0 | 1, unknown]
      return { _tag: "Failure", error, callError: callError === 1 }
    }
    case "Defect":
      return encodeCallFailure(defectError(request.worker, request.method, reply.defect))
    case "Interrupted":
      return reply
  }
}

/** Adapts a transport call function to what `remoteTarget` sends through. */
export const sendWith =
  <E>(call: (request: Frame.Call) => Effect.Effect<Frame.ReplyExit, E>) =>
  (request: Request): Effect.Effect<EncodedExit, E> =>
    Effect.map(call(request), (reply) => fromReply(reply, request))

/** What an Env is told when it starts. */
export interface EnvInit {
  readonly corps: string
  readonly module: string
  readonly envName: string
  readonly index: number
  /** The Workers to build in this Env; every other exported Worker is reached through the caller. */
  readonly workers: ReadonlyArray<string>
}

/** The environment variable a child process finds its EnvInit in. */
export const INIT_VARIABLE = "CORPS_ENV_INIT"

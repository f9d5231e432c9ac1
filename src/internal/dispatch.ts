/**
 * The two halves of a call that crosses an Env boundary, with no transport in
 * between: the caller encodes (`encodeCall` / `decodeReply`), the Env decodes,
 * runs the handler and encodes the outcome (`Dispatcher`).
 *
 * The local serialization check runs exactly these halves back to back, so
 * what passes it is known to cross a thread, a process or a host.
 */
import { Cause, Effect, Exit } from "effect"
import { UnknownMethod, UnknownWorker } from "../CorpsError.ts"
import type { AnyWorker } from "../Worker.ts"
import { codecsOf, decodeFailure, type EncodedExit, encodeCallFailure, encodeFailure, run } from "./codec.ts"
import type { Target } from "./handle.ts"
import { defectError } from "./invoke.ts"

/** One call as it travels: names and an encoded payload. */
export interface Request {
  readonly worker: string
  readonly key: string
  readonly method: string
  readonly payload: unknown
}

/** What an Env serves: for each Worker, its contract and the Target of a key. */
export interface Served {
  readonly worker: AnyWorker
  target(key: string): Target
}

/** The Env side: decodes a request, runs it, encodes how it ended. Never fails. */
export class Dispatcher {
  readonly corps: string
  readonly served: ReadonlyMap<string, Served>
  constructor(corps: string, served: ReadonlyMap<string, Served>) {
    this.corps = corps
    this.served = served
  }

  dispatch(request: Request): Effect.Effect<EncodedExit> {
    const served = this.served.get(request.worker)
    if (served === undefined) {
      return Effect.succeed(encodeCallFailure(new UnknownWorker({ worker: request.worker, corps: this.corps })))
    }
    const codec = codecsOf(served.worker).get(request.method)
    if (codec === undefined) {
      return Effect.succeed(encodeCallFailure(new UnknownMethod({ worker: request.worker, method: request.method })))
    }
    const payload = run(codec.decodePayload, request.payload, "payload", codec)
    if (Exit.isFailure(payload)) return Effect.succeed(encodeCallFailure(Exit.findErrorOption(payload).pipe(getSome)))
    return Effect.matchCause(served.target(request.key).call(request.method, payload.value), {
      onSuccess: (value): EncodedExit => {
        const encoded = run(codec.encodeSuccess, value, "success", codec)
        return Exit.isSuccess(encoded)
          ? { _tag: "Success", value: encoded.value }
          : encodeCallFailure(Exit.findErrorOption(encoded).pipe(getSome))
      },
      onFailure: (cause): EncodedExit => {
        const error = Cause.findErrorOption(cause)
        if (error._tag === "Some") return encodeFailure(codec, error.value)
        if (Cause.hasInterruptsOnly(cause)) return { _tag: "Interrupted" }
        return encodeCallFailure(defectError(request.worker, request.method, Cause.squash(cause)))
      }
    })
  }
}

const getSome = <A>(option: { readonly _tag: "Some"; readonly value: A } | { readonly _tag: "None" }): A | undefined =>
  option._tag === "Some" ? option.value : undefined

/**
 * The caller side for `worker`: encodes the payload, hands the request to
 * `send`, and decodes the reply into the method's success or error.
 */
export const remoteTarget = (
  worker: AnyWorker,
  key: string,
  send: (request: Request) => Effect.Effect<EncodedExit, unknown>
): Target => {
  const codecs = codecsOf(worker)
  return {
    call(method, payload) {
      const codec = codecs.get(method)
      if (codec === undefined) return Effect.fail(new UnknownMethod({ worker: worker.key, method }))
      return Effect.suspend(() => {
        const encoded = run(codec.encodePayload, payload, "payload", codec)
        if (Exit.isFailure(encoded)) return encoded
        return Effect.flatMap(send({ worker: worker.key, key, method, payload: encoded.value }), (reply) => {
          switch (reply._tag) {
            case "Success":
              return run(codec.decodeSuccess, reply.value, "success", codec)
            case "Failure":
              return Exit.fail(decodeFailure(codec, reply.error, reply.callError))
            case "Interrupted":
              return Effect.interrupt
          }
        })
      })
    },
    stream(method) {
      return Effect.die(`${worker.key}.${method}: streaming across Envs is not supported yet`) as any
    }
  }
}

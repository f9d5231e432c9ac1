/**
 * Per-method encoders and decoders, derived once from a contract and cached.
 *
 * Everything that crosses an Env boundary goes through these: the payload on
 * the way in, the success value or the error on the way out. Errors raised by
 * effect-corps itself (CallError) travel with their own Schema, so the
 * declared error Schema of a method never has to mention them.
 */
import { Exit, Option, Schema } from "effect"
import type { SchemaError } from "effect/Schema"
import { CallError, SerializationError } from "../CorpsError.ts"
import type { AnyWorker, MethodSpec } from "../Worker.ts"
import type * as Wire from "./wire.ts"

/** A value as it travels: a plain, structured-clone-able object. */
export type Encoded = unknown

type Codec = (u: unknown) => Exit.Exit<unknown, SchemaError>

/** The encoders and decoders of one method. */
export interface MethodCodec {
  readonly worker: string
  readonly method: string
  readonly spec: MethodSpec
  readonly encodePayload: Codec
  readonly decodePayload: Codec
  readonly encodeSuccess: Codec
  readonly decodeSuccess: Codec
  readonly encodeError: Codec
  readonly decodeError: Codec
  readonly isError: (u: unknown) => boolean
}

const encodeCallError = Schema.encodeUnknownExit(CallError as Schema.Codec<CallError, unknown>)
const decodeCallError = Schema.decodeUnknownExit(CallError as Schema.Codec<CallError, unknown>)

const cache = new WeakMap<AnyWorker, ReadonlyMap<string, MethodCodec>>()

/** The codecs of every method of `worker`, by method name. */
export const codecsOf = (worker: AnyWorker): ReadonlyMap<string, MethodCodec> => {
  let codecs = cache.get(worker)
  if (codecs === undefined) {
    const map = new Map<string, MethodCodec>()
    for (const rpc of worker.group.requests.values()) {
      const spec = worker.methods[rpc._tag]!
      const success: Schema.Top = spec.success ?? Schema.Void
      const error: Schema.Top = spec.error ?? Schema.Never
      map.set(rpc._tag, {
        worker: worker.key,
        method: rpc._tag,
        spec,
        encodePayload: Schema.encodeUnknownExit(rpc.payloadSchema as any) as Codec,
        decodePayload: Schema.decodeUnknownExit(rpc.payloadSchema as any) as Codec,
        encodeSuccess: Schema.encodeUnknownExit(success as any) as Codec,
        decodeSuccess: Schema.decodeUnknownExit(success as any) as Codec,
        encodeError: Schema.encodeUnknownExit(error as any) as Codec,
        decodeError: Schema.decodeUnknownExit(error as any) as Codec,
        isError: Schema.is(error as any)
      })
    }
    codecs = map
    cache.set(worker, codecs)
  }
  return codecs
}

/** Runs a codec; a Schema failure becomes a SerializationError naming the part. */
export const run = (
  codec: Codec,
  value: unknown,
  part: "payload" | "success" | "error",
  method: MethodCodec
): Exit.Exit<unknown, SerializationError> => {
  const exit = codec(value)
  if (Exit.isSuccess(exit)) return exit as Exit.Exit<unknown, never>
  const issue = Exit.findErrorOption(exit)
  return Exit.fail(
    new SerializationError({
      worker: method.worker,
      method: method.method,
      part,
      issue: issue._tag === "Some" ? issue.value.message : "unknown"
    })
  )
}

/** Encodes a failure: a declared error with the method's Schema, an effect-corps error with its own. */
export const encodeFailure = (method: MethodCodec, error: unknown): Wire.Exit => {
  if (method.isError(error)) {
    const encoded = run(method.encodeError, error, "error", method)
    if (Exit.isSuccess(encoded)) return { _tag: "Failure", error: [0, encoded.value] }
    return encodeCallFailure(Option.getOrElse(Exit.findErrorOption(encoded), () => error))
  }
  return encodeCallFailure(error)
}

/** Encodes one of effect-corps' own errors (anything else is reported as a SerializationError). */
export const encodeCallFailure = (error: unknown): Wire.Exit => {
  const encoded = encodeCallError(error)
  if (Exit.isSuccess(encoded)) return { _tag: "Failure", error: [1, encoded.value] }
  const fallback = encodeCallError(
    new SerializationError({ worker: "?", method: "?", part: "error", issue: `unencodable error: ${String(error)}` })
  )
  return { _tag: "Failure", error: [1, Exit.isSuccess(fallback) ? fallback.value : null] }
}

/** Decodes one of effect-corps' own errors, encoded by {@link encodeCallFailure} (anything else: a SerializationError). */
export const decodeCallFailure = (encoded: Encoded): unknown => {
  const exit = decodeCallError(encoded)
  return Exit.isSuccess(exit)
    ? exit.value
    : new SerializationError({
        worker: "?",
        method: "?",
        part: "error",
        issue: `undecodable error: ${String(encoded)}`
      })
}

/** Decodes a failure on the caller's side. */
export const decodeFailure = (method: MethodCodec, encoded: readonly [0 | 1, Encoded]): unknown => {
  const [callError, error] = encoded
  const exit: Exit.Exit<unknown, unknown> =
    callError === 1 ? decodeCallError(error) : run(method.decodeError, error, "error", method)
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Exit.findErrorOption(exit)
  return failure._tag === "Some" ? failure.value : error
}

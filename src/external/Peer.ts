/**
 * One ExtCorps connection, once opened (protocol.ts): calls both ways over
 * one socket. This side serves its Workers on it — the served ones by name,
 * any other of this program by `name@corpsId` (a handle it passed out) — and
 * calls the peer's Workers through it.
 *
 * Handles of the peer's Corps are resolved through {@link routes}: a Corps id
 * maps to the live connection of the program that announced it, so a handle
 * decoded here calls that program, and keeps calling it over the next
 * connection after a reconnect (the same program, the same ids).
 */
import { Cause, Effect, Exit, Option, Schema, Scope, Stream } from "effect"
import { CallError, CallLost, SerializationError, UnknownMethod, UnknownWorker } from "../CorpsError.ts"
import { codecsOf, type MethodCodec } from "../internal/codec.ts"
import { Dispatcher, remoteTarget, type Served, STREAM } from "../internal/dispatch.ts"
import { contractOfClass, type HandleClass, type Target, type WorkerEntry } from "../internal/handle.ts"
import { defectError } from "../internal/invoke.ts"
import { messageOf } from "../internal/message.ts"
import { addExternalResolver, corpsIds, lookup, onRegister } from "../internal/registry.ts"
import * as Wire from "../internal/wire.ts"
import { split } from "../node/duplex.ts"
import { scheduleOf as retryScheduleOf } from "../node/redelivery.ts"
import { type Client, makeClient } from "../node/transport/Client.ts"
import type { Link } from "../node/transport/Link.ts"
import { serve } from "../node/transport/Server.ts"
import type { AnyWorker } from "../Worker.ts"
import { CONTROL, JSON_CALL, type JsonCall } from "./protocol.ts"

/** A served Worker: its contract and the handle whose instances answer. */
export interface Exposed {
  readonly worker: AnyWorker
  readonly corps: string
  target(key: string): Target
}

/** A live connection to another program. */
export interface Peer {
  /** Names the other program in CallLost errors ("program at 10.0.0.2:7500"). */
  readonly name: string
  readonly client: Client
  /** Resolves once the connection is closed, with why. */
  readonly closed: Promise<string>
  readonly close: Effect.Effect<void>
}

/** Corps id → the live connection of the program that owns it. */
const routes = new Map<string, Peer>()

/** How a Worker is named on the wire: a served Worker by name, any other by `name@corps`. */
export const address = (worker: string, corps: string | undefined): string =>
  corps === undefined ? worker : `${worker}@${corps}`

/** Sends `request` to `address` over `peer()`; a missing connection fails it at once with CallLost. */
export const sender =
  (address: string, peer: () => Peer | undefined, name: string) =>
  (request: Wire.Call): Effect.Effect<Wire.Exit, CallLost> => {
    const current = peer()
    if (current === undefined)
      return Effect.fail(
        new CallLost({
          worker: request.worker,
          method: request.method,
          env: name,
          reason: "not connected (reconnecting)",
          mayHaveRun: false
        })
      )
    return current.client.call(rename(request, address))
  }

/** The request with its Worker renamed for the wire (a stream's `open` names it in its payload). */
const rename = (request: Wire.Call, address: string): Wire.Call => {
  if (request.worker !== STREAM) return { ...request, worker: address }
  if (request.method !== "open") return request
  return { ...request, payload: { ...(request.payload as Wire.Call), worker: address } }
}

const entries = new Map<string, WorkerEntry>()
let resolverInstalled = false

/** Handles of a Corps that lives in a connected program call it through its current connection. */
const installResolver = (): void => {
  if (resolverInstalled) return
  resolverInstalled = true
  addExternalResolver((corps: string, worker: string, HandleClass: HandleClass) => {
    const first = routes.get(corps)
    if (first === undefined) return undefined
    const id = `${corps}\u0000${worker}`
    let entry = entries.get(id)
    if (entry === undefined) {
      const contract = contractOfClass(HandleClass)
      if (contract === undefined) return undefined
      const name = first.name
      const send = sender(address(worker, corps), () => routes.get(corps), name)
      const made: WorkerEntry = {
        corps,
        worker,
        HandleClass,
        target: (key) => retrying(contract, remoteTarget(contract, key, send))
      }
      entry = made
      entries.set(id, made)
    }
    return entry
  })
}

/**
 * A Target whose `idempotent` methods are sent again when lost (CallLost),
 * under each method's retry policy: the backoff is what waits for the
 * connection to come back. Streams are never sent again.
 */
export const retrying = (worker: AnyWorker, target: Target): Target => {
  const codecs = codecsOf(worker)
  return {
    call: (method, payload) => {
      const codec = codecs.get(method)
      if (codec === undefined || codec.spec.idempotent !== true) return target.call(method, payload)
      const options = { schedule: scheduleOf(codec), while: (error: unknown) => error instanceof CallLost }
      return Effect.retry(target.call(method, payload), options as never) as Effect.Effect<unknown, unknown>
    },
    stream: (method, payload) => target.stream(method, payload)
  }
}

/** The retry schedule of an idempotent method: the one thread and process Envs use (docs/redelivery.md). */
const scheduleOf = (codec: MethodCodec) => retryScheduleOf(codec.spec.retry)

/**
 * What this side serves on a connection: the exposed Workers by name, and
 * `name@corps` for any Worker of a Corps registered in this program (handles
 * passed out; Corps ids are unguessable, and the secret already admits the
 * peer).
 */
class ServedView extends Map<string, Served> {
  readonly exposed: ReadonlyMap<string, Exposed>
  constructor(exposed: ReadonlyMap<string, Exposed>) {
    super()
    this.exposed = exposed
  }
  override get(name: string): Served | undefined {
    const cached = super.get(name)
    if (cached !== undefined) return cached
    const at = name.indexOf("@")
    let found: Served | undefined
    if (at < 0) found = this.exposed.get(name)
    else {
      const worker = name.slice(0, at)
      const corps = name.slice(at + 1)
      const exposed = this.exposed.get(worker)
      if (exposed !== undefined && exposed.corps === corps) found = exposed
      else {
        // Only this program's own registry: a peer's handle is never forwarded to a third program.
        const entry = lookup(corps, worker)
        const contract = entry === undefined ? undefined : contractOfClass(entry.HandleClass)
        if (entry !== undefined && contract !== undefined)
          found = { worker: contract, target: (key) => entry.target(key) }
      }
    }
    // A served view renames nothing: the Dispatcher's codecs are the contract's.
    if (found !== undefined) super.set(name, found)
    return found
  }
}

/** Options of {@link open}. */
export interface OpenOptions {
  readonly link: Link
  readonly name: string
  /** The Workers this side serves by name (none on a dialer). */
  readonly exposed: ReadonlyMap<string, Exposed>
  /** The Corps ids the peer announced in its hello or welcome. */
  readonly peerCorps: ReadonlyArray<string>
  /** The Corps id this side reports in UnknownWorker errors. */
  readonly label: string
}

/**
 * Starts serving and calling on an opened connection. The connection lives
 * until its link closes or `close` runs; its server fiber is forked in `scope`.
 */
export const open = (options: OpenOptions, scope: Scope.Scope): Effect.Effect<Peer> =>
  Effect.gen(function* () {
    installResolver()
    const { calling, serving } = split(options.link)
    const client = yield* makeClient(calling, { envName: options.name })
    let closeReason: (reason: string) => void = () => {}
    const closed = new Promise<string>((resolve) => {
      closeReason = resolve
    })
    const peer: Peer = { name: options.name, client, closed, close: client.close }
    const claimed = new Set<string>()
    const claim = (ids: ReadonlyArray<unknown>) => {
      for (const id of ids) {
        if (typeof id !== "string") continue
        claimed.add(id)
        routes.set(id, peer)
      }
    }
    claim(options.peerCorps)
    const dispatcher = new Dispatcher(options.label, new ServedView(options.exposed))
    // Corps built here after the connection opened are announced, so that their handles resolve there.
    const stopAnnouncing = onRegister((corps) => {
      client.register({ worker: CONTROL, key: "", method: "corps", payload: [corps] }, ignore)
    })
    options.link.onClose((reason) => {
      stopAnnouncing()
      for (const id of claimed) if (routes.get(id) === peer) routes.delete(id)
      // Streams the peer opened and never closed end with it.
      const open = [...dispatcher.streams.open.values()]
      dispatcher.streams.open.clear()
      for (const stream of open) Effect.runFork(Scope.close(stream.scope, Exit.void))
      closeReason(reason)
    })
    const handler = (call: Wire.Call): Effect.Effect<Wire.Exit> => {
      if (call.worker === CONTROL) {
        if (call.method === "corps" && Array.isArray(call.payload)) claim(call.payload)
        return Effect.succeed(Wire.success(null))
      }
      if (call.worker === JSON_CALL) return jsonCall(dispatcher, call.payload as JsonCall)
      return dispatcher.dispatch(call)
    }
    yield* Effect.forkIn(serve(serving, handler), scope)
    return peer
  })

/** The Corps ids of this program, announced in hello and welcome. */
export const localCorps = (): ReadonlyArray<string> => corpsIds()

const ignore = (): void => {}

const jsonCodecs = new WeakMap<MethodCodec, JsonCodec>()
interface JsonCodec {
  readonly decodePayload: (u: unknown) => Exit.Exit<unknown, Schema.SchemaError>
  readonly encodeSuccess: (u: unknown) => Exit.Exit<unknown, Schema.SchemaError>
  readonly encodeError: (u: unknown) => Exit.Exit<unknown, Schema.SchemaError>
}
const encodeCallErrorJson = Schema.encodeUnknownExit(Schema.toCodecJson(CallError as Schema.Top) as any)

const jsonCodecOf = (worker: AnyWorker, codec: MethodCodec): JsonCodec => {
  let found = jsonCodecs.get(codec)
  if (found === undefined) {
    const rpc = worker.group.requests.get(codec.method) as { readonly payloadSchema: Schema.Top }
    found = {
      decodePayload: Schema.decodeUnknownExit(Schema.toCodecJson(rpc.payloadSchema) as any),
      encodeSuccess: Schema.encodeUnknownExit(Schema.toCodecJson(codec.spec.success ?? Schema.Void) as any),
      encodeError: Schema.encodeUnknownExit(Schema.toCodecJson(codec.spec.error ?? Schema.Never) as any)
    }
    jsonCodecs.set(codec, found)
  }
  return found
}

const callFailure = (error: unknown): Wire.Exit => {
  const encoded = encodeCallErrorJson(error)
  return {
    _tag: "Failure",
    error: [1, Exit.isSuccess(encoded) ? encoded.value : { _tag: "SerializationError", issue: String(error) }]
  }
}

/**
 * A call from `corps call`: the payload is JSON, decoded here with the
 * method's Schema (its JSON codec); the answer is JSON too — the success,
 * or the typed error with its tag. A streaming method answers the array of
 * its elements.
 */
const jsonCall = (dispatcher: Dispatcher, call: JsonCall): Effect.Effect<Wire.Exit> => {
  if (typeof call !== "object" || call === null || typeof call.worker !== "string" || typeof call.method !== "string")
    return Effect.succeed(callFailure(new UnknownWorker({ worker: String(call?.worker), corps: dispatcher.corps })))
  const served = dispatcher.served.get(call.worker)
  if (served === undefined)
    return Effect.succeed(callFailure(new UnknownWorker({ worker: call.worker, corps: dispatcher.corps })))
  const codec = codecsOf(served.worker).get(call.method)
  if (codec === undefined || call.method.startsWith("$"))
    return Effect.succeed(callFailure(new UnknownMethod({ worker: call.worker, method: call.method })))
  const json = jsonCodecOf(served.worker, codec)
  const payload = json.decodePayload(call.json)
  if (Exit.isFailure(payload)) {
    const issue = Exit.findErrorOption(payload)
    return Effect.succeed(
      callFailure(
        new SerializationError({
          worker: call.worker,
          method: call.method,
          part: "payload",
          issue: issue._tag === "Some" ? issue.value.message : "unknown"
        })
      )
    )
  }
  const target = served.target(typeof call.key === "string" ? call.key : "")
  const outcome: Effect.Effect<unknown, unknown> =
    codec.spec.stream === true
      ? Effect.map(Stream.runCollect(target.stream(call.method, payload.value)), (chunk) => Array.from(chunk))
      : target.call(call.method, payload.value)
  return Effect.matchCause(outcome, {
    onSuccess: (value): Wire.Exit => {
      if (codec.spec.stream !== true) {
        const encoded = json.encodeSuccess(value)
        return Exit.isSuccess(encoded) ? Wire.success(encoded.value) : callFailure(Cause.squash(encoded.cause))
      }
      const values: Array<unknown> = []
      for (const element of value as Array<unknown>) {
        const encoded = json.encodeSuccess(element)
        if (Exit.isFailure(encoded)) return callFailure(Cause.squash(encoded.cause))
        values.push(encoded.value)
      }
      return Wire.success(values)
    },
    onFailure: (cause): Wire.Exit => {
      const error = Cause.findErrorOption(cause)
      if (Option.isSome(error)) {
        if (codec.isError(error.value)) {
          const encoded = json.encodeError(error.value)
          if (Exit.isSuccess(encoded)) return { _tag: "Failure", error: [0, encoded.value] }
        }
        return callFailure(error.value)
      }
      if (Cause.hasInterruptsOnly(cause)) return Wire.interrupted
      return callFailure(defectError(call.worker, call.method, messageOf(Cause.squash(cause))))
    }
  })
}

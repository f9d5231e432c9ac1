/**
 * The HTTP gateway's server (`Gateway.layer`): the handlers that read a
 * request, call a Worker through its handle and answer, the bearer check,
 * the routes for everything else, and the Node server under them. Loaded by
 * `Gateway.layer` only when a gateway is built.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { ByteSize, Effect, Exit, Layer, Option, Redacted, Schema, Scope, Sink, Stream } from "effect"
import { HttpIncomingMessage, HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiScalar, OpenApi } from "effect/http-api"
import {
  type CallError,
  CallError as CallErrorSchema,
  type DownstreamCause,
  DownstreamFailed,
  GatewayError,
  GatewayUnauthorized,
  InstanceStartFailed,
  InvalidPayload,
  isCallError,
  PayloadTooLarge,
  UnknownMethod,
  UnknownWorker,
  WorkerDefect
} from "../CorpsError.ts"
import type { Auth } from "../Gateway.ts"
import { Gateway } from "../Gateway.ts"
import { listening, nodeServer } from "../internal/httpServer.ts"
import type { AnyWorker, MethodSpec } from "../Worker.ts"
import { callErrorStatus, contractErrors, makeApi, pathOf, payloadSchemaOf, servedMethods } from "./api.ts"

/** The options of `Gateway.layer`, checked and with their defaults. */
export interface Resolved {
  readonly port: number
  readonly host: string
  /** How the address is named in errors. */
  readonly where: string
  readonly auth: Auth | undefined
  readonly maxBodyBytes: number
  readonly openapiPath: `/${string}` | undefined
  readonly docsPath: `/${string}` | undefined
  readonly title: string
}

/** Serves `workers` over HTTP (options already checked). */
export const layer = (
  workers: ReadonlyArray<AnyWorker>,
  options: Resolved
): Layer.Layer<Gateway, GatewayError, any> => {
  const server = nodeServer(
    options.port,
    options.host,
    (detail) => new GatewayError({ address: options.where, reason: "listen", detail })
  )
  const address = Layer.effect(Gateway, listening(options.host, options.port))
  const served = HttpRouter.serve(routes(workers, options), { disableLogger: true, disableListenLog: true })
  return Layer.mergeAll(served, address).pipe(Layer.provide(server)) as Layer.Layer<Gateway, GatewayError, any>
}

/**
 * The gateway's routes on an `HttpRouter`: one per method, the OpenAPI
 * document and page, and answers for every other path. Needs the Workers and
 * the HTTP platform services (a Node server provides them).
 *
 * The API is described with `effect/http-api` (`api.ts`), which makes the
 * OpenAPI document and the page, but the calls are served by plain routes:
 * `HttpApiBuilder`'s per-request machinery cost about as much CPU as the
 * whole direct effect/http handler (docs/decisions.md). The routes follow the
 * description: the same paths, payload Schemas and error table.
 */
export const routes = (workers: ReadonlyArray<AnyWorker>, options: Resolved): Layer.Layer<never, never, any> => {
  const api = makeApi(workers, { title: options.title, auth: options.auth !== undefined })
  const verify = options.auth === undefined ? undefined : verifier(options.auth)
  const calls = HttpRouter.use((router) =>
    Effect.forEach(
      workers,
      (worker) =>
        Effect.flatMap(worker as unknown as Effect.Effect<Callable>, (base) =>
          Effect.forEach(
            servedMethods(worker),
            (method) =>
              router.add("POST", pathOf(worker.key, method), methodRoute(worker, method, base, options, verify)),
            { discard: true }
          )
        ),
      { discard: true }
    )
  )
  const openapi =
    options.openapiPath === undefined
      ? Layer.empty
      : HttpRouter.use((router) => {
          const document = HttpServerResponse.jsonUnsafe(OpenApi.fromApi(api as any))
          return router.add("GET", options.openapiPath!, Effect.succeed(document))
        })
  const docs =
    options.docsPath === undefined ? Layer.empty : HttpApiScalar.layer(api as any, { path: options.docsPath })
  // UnknownWorker names the Corps that serves the gateway's Workers (that of the first one).
  const fallback = HttpRouter.use((router) =>
    Effect.flatMap(
      workers.length === 0
        ? Effect.succeed("")
        : Effect.map(workers[0] as unknown as Effect.Effect<Callable>, (handle) => handle.corps),
      (corps) => router.add("*", "*", otherwise(workers, corps, verify))
    )
  )
  return Layer.mergeAll(calls, openapi, docs, fallback)
}

/** A handle as the gateway uses it: methods by name, and sibling instances. */
interface Callable {
  readonly corps: string
  readonly [method: string]: unknown
  instance(key: string): Callable
}

const noContent = HttpServerResponse.empty({ status: 204 })

const encodeInvalidPayload = Schema.encodeSync(InvalidPayload)
const encodeTooLarge = Schema.encodeSync(PayloadTooLarge)
const encodeUnauthorized = Schema.encodeSync(GatewayUnauthorized)
const encodeUnknownWorker = Schema.encodeSync(UnknownWorker)
const encodeUnknownMethod = Schema.encodeSync(UnknownMethod)

const invalid = (worker: string, method: string, issue: string) =>
  HttpServerResponse.jsonUnsafe(encodeInvalidPayload(new InvalidPayload({ worker, method, issue })), { status: 400 })

// The rest of an oversized body is not read: the connection is closed instead of drained.
const tooLarge = (limit: number) =>
  HttpServerResponse.jsonUnsafe(encodeTooLarge(new PayloadTooLarge({ limit })), {
    status: 413,
    headers: { connection: "close" }
  })

/**
 * The reader of a route's bodies: the body as text, or the response that
 * refuses it (too large, unreadable). The limit's values are made once per
 * route, not per request.
 */
const bodyReader = (limit: number, worker: string, method: string) => {
  const refused = tooLarge(limit)
  const maxBodySize = ByteSize.bytes(limit)
  /** Whether the declared Content-Length is over the limit (then nothing is read). */
  const declaredTooLarge = (request: HttpServerRequest.HttpServerRequest): boolean => {
    const declared = request.headers["content-length"]
    return declared !== undefined && Number(declared) > limit
  }
  const read = (
    request: HttpServerRequest.HttpServerRequest
  ): Effect.Effect<string | HttpServerResponse.HttpServerResponse> => {
    // With a Content-Length, Node reads that many bytes and no more; a chunked body is counted as it is read.
    const text =
      request.headers["content-length"] === undefined
        ? Effect.provideService(request.text, HttpIncomingMessage.MaxBodySize, maxBodySize)
        : request.text
    return Effect.catch(text, (error: any) =>
      Effect.succeed(
        error?.reason?.reason === "BodyTooLarge"
          ? refused
          : invalid(worker, method, `the body could not be read: ${describe(error)}`)
      )
    )
  }
  return { refused, declaredTooLarge, read }
}

/** The value of `?key=`, if the URL has one. */
const keyOf = (url: string): string | undefined => {
  const query = url.indexOf("?")
  if (query === -1) return undefined
  return new URLSearchParams(url.slice(query + 1)).get("key") ?? undefined
}

// Shared by every route: effect-corps' call errors are the same for all methods.
const encodeCallError = Schema.encodeUnknownExit(Schema.toCodecJson(CallErrorSchema) as any)

/**
 * How a method's errors are answered, in the order of its error table
 * (`errorTable`): the first of the contract's own errors whose Schema takes
 * the error, else effect-corps' call error by its tag (`callErrorStatus`);
 * the body is the error encoded by that Schema. An error it does not declare
 * is a defect (500).
 */
const errorResponder = (spec: MethodSpec) => {
  const own = contractErrors(spec.error).map(({ schema, status }) => ({
    is: Schema.is(schema as Schema.Codec<unknown>),
    encode: Schema.encodeUnknownExit(Schema.toCodecJson(schema) as any),
    status
  }))
  const answer = (encoded: Exit.Exit<unknown, unknown>, status: number) =>
    Exit.isSuccess(encoded) ? Effect.succeed(HttpServerResponse.jsonUnsafe(encoded.value, { status })) : undefined
  return (error: unknown): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
    const redacted = redact(error)
    for (const entry of own) {
      const answered = entry.is(redacted) ? answer(entry.encode(redacted), entry.status) : undefined
      if (answered !== undefined) return answered
    }
    if (isCallError(redacted)) {
      const answered = answer(encodeCallError(redacted), callErrorStatus[redacted._tag])
      if (answered !== undefined) return answered
    }
    return Effect.die(error)
  }
}

/**
 * The route of one method: checks the token, reads and decodes the body
 * (a refusal carries the Schema's issue), calls the default instance or the
 * one named by `?key=`, and answers the success encoded by its Schema or the
 * error with its status. A stream's first element is awaited here, so that a
 * call failing before it answers with the error's status rather than a
 * broken stream.
 */
const methodRoute = (
  worker: AnyWorker,
  method: string,
  base: Callable,
  options: Resolved,
  verify: ((token: Redacted.Redacted<string>) => Effect.Effect<GatewayUnauthorized | undefined>) | undefined
) => {
  const spec = worker.methods[method] as MethodSpec
  const schema = payloadSchemaOf(worker, method)
  // Payload and success Schemas are synchronous (they cross Envs as Exits too, see internal/codec.ts).
  const decode = schema === undefined ? undefined : Schema.decodeUnknownExit(Schema.toCodecJson(schema) as any)
  const name = worker.key
  const encodeSuccess =
    spec.success === undefined ? undefined : Schema.encodeUnknownExit(Schema.toCodecJson(spec.success) as any)
  const sse = spec.stream === true ? sseResponder(spec) : undefined
  const failed = errorResponder(spec)
  const body = bodyReader(options.maxBodyBytes, name, method)
  const call = Effect.fnUntraced(function* (request: HttpServerRequest.HttpServerRequest) {
    if (verify !== undefined) {
      const refused = yield* verify(bearerOf(request))
      if (refused !== undefined) return unauthorized(refused)
    }
    if (body.declaredTooLarge(request)) return body.refused
    let payload: unknown
    if (decode !== undefined) {
      const text = yield* body.read(request)
      if (typeof text !== "string") return text
      let json: unknown
      try {
        json = text === "" ? undefined : JSON.parse(text)
      } catch (error) {
        return invalid(name, method, `the body is not JSON: ${describe(error)}`)
      }
      const decoded = decode(json)
      if (Exit.isFailure(decoded)) {
        const failure = Exit.findErrorOption(decoded)
        return invalid(name, method, Option.isSome(failure) ? (failure.value as Error).message : "invalid payload")
      }
      payload = decoded.value
    }
    const key = keyOf(request.url)
    const handle = key === undefined ? base : base.instance(key)
    const result = (handle[method] as (payload: unknown) => unknown)(payload)
    if (spec.stream === true) {
      const stream = yield* startStream(result as Stream.Stream<unknown, unknown>)
      return sse !== undefined && wantsSse(request) ? sse(stream) : ndjson(stream, encodeSuccess)
    }
    const value = yield* result as Effect.Effect<unknown, unknown>
    if (encodeSuccess === undefined) return noContent
    // A success its own Schema refuses is the handler's bug: a defect, answered 500.
    const encoded = encodeSuccess(value)
    if (Exit.isSuccess(encoded)) return HttpServerResponse.jsonUnsafe(encoded.value)
    return yield* Effect.die(Exit.findErrorOption(encoded).pipe(Option.getOrElse(() => encoded.cause)))
  })
  return (request: HttpServerRequest.HttpServerRequest) => Effect.catch(call(request), failed)
}

/**
 * A stream as NDJSON: one line per element, encoded by the success Schema. A
 * failure after the answer has started breaks the body (the status is sent).
 */
const ndjson = (
  stream: Stream.Stream<unknown, unknown>,
  encode: ((u: unknown) => Exit.Exit<unknown, unknown>) | undefined
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(
    Stream.mapEffect(stream, (element) => {
      const encoded = encode === undefined ? Exit.succeed(null) : encode(element)
      return Exit.isSuccess(encoded)
        ? Effect.succeed(encoder.encode(`${JSON.stringify(encoded.value)}\n`))
        : Effect.die(new Error(`a stream element does not fit its Schema: ${String(encoded.cause)}`))
    }),
    { contentType: "application/x-ndjson" }
  )

/**
 * An error as HTTP clients see it: without the stack traces a defect carries
 * (they show the server's files and lines); name and message stay.
 */
const redact = (error: unknown): unknown => {
  if (error instanceof WorkerDefect) {
    if (error.defectStack === undefined) return error
    const { worker, method, defect, defectName, defectMessage } = error
    return new WorkerDefect({ worker, method, defect, defectName, defectMessage })
  }
  if (error instanceof InstanceStartFailed) {
    const { worker, key, reason, defect } = error
    const inner = error.error === undefined ? undefined : (redact(error.error) as CallError)
    return new InstanceStartFailed({
      worker,
      key,
      reason,
      ...(defect === undefined ? {} : { defect }),
      ...(inner === undefined ? {} : { error: inner })
    })
  }
  if (error instanceof DownstreamFailed) {
    const { worker, method, via } = error
    return new DownstreamFailed({ worker, method, via, error: redact(error.error) as DownstreamCause })
  }
  return error
}

/** The stream, once its first element (or its end) has come; fails if it fails before. */
const startStream = <A, E>(stream: Stream.Stream<A, E>): Effect.Effect<Stream.Stream<A, E>, E> =>
  Effect.gen(function* () {
    // The rest of a peeled stream lives in a scope: it is closed when the response stream ends.
    const scope = yield* Scope.make()
    const peeled = yield* Effect.exit(Scope.provide(Stream.peel(stream, Sink.head<A>()), scope))
    if (Exit.isFailure(peeled)) {
      yield* Scope.close(scope, peeled)
      return yield* Effect.failCause(peeled.cause)
    }
    const [first, rest] = peeled.value
    const all = Option.isSome(first) ? Stream.concat(Stream.succeed(first.value), rest) : Stream.empty
    return all.pipe(Stream.ensuring(Scope.close(scope, Exit.void)))
  })

const wantsSse = (request: HttpServerRequest.HttpServerRequest): boolean =>
  (request.headers.accept ?? "").includes("text/event-stream")

const encoder = new TextEncoder()

/**
 * A stream as Server-Sent Events, for clients that ask for them
 * (`Accept: text/event-stream`): each element is a `data:` event; a failure
 * after the first element is one last `event: error` whose data is the tagged
 * error — which NDJSON cannot carry (its body just breaks).
 */
const sseResponder = (spec: MethodSpec) => {
  const encodeElement = Schema.encodeUnknownEffect(Schema.toCodecJson(spec.success ?? Schema.Null) as any)
  const errors: Schema.Top =
    spec.error === undefined
      ? (CallErrorSchema as Schema.Top)
      : Schema.Union([spec.error, CallErrorSchema as Schema.Top])
  const encodeError = Schema.encodeUnknownEffect(Schema.toCodecJson(errors) as any)
  const event = (name: string | undefined, data: unknown) =>
    encoder.encode(`${name === undefined ? "" : `event: ${name}\n`}data: ${JSON.stringify(data)}\n\n`)
  return (stream: Stream.Stream<unknown, unknown>): HttpServerResponse.HttpServerResponse =>
    HttpServerResponse.stream(
      (stream as Stream.Stream<unknown, unknown>).pipe(
        Stream.mapEffect((element) =>
          Effect.map(Effect.orDie(encodeElement(element)), (data) => event(undefined, data))
        ),
        Stream.catch((error) =>
          Stream.fromEffect(Effect.map(Effect.orDie(encodeError(redact(error))), (data) => event("error", data)))
        )
      ) as Stream.Stream<Uint8Array>,
      { contentType: "text/event-stream", headers: { "cache-control": "no-store" } }
    )
}

const digest = (text: string): Buffer => createHash("sha256").update(text).digest()

/**
 * The bearer check: undefined when the token is accepted, else the refusal.
 * A fixed token is compared in constant time (through its digest, so its
 * length does not show either).
 */
const verifier = (auth: Auth) => {
  const { bearer } = auth
  const check = Redacted.isRedacted(bearer) ? acceptOnly(bearer) : bearer
  return (token: Redacted.Redacted<string>): Effect.Effect<GatewayUnauthorized | undefined> =>
    Redacted.value(token) === ""
      ? Effect.succeed(new GatewayUnauthorized({ reason: "missing" }))
      : Effect.map(check(token), (ok) => (ok ? undefined : new GatewayUnauthorized({ reason: "refused" })))
}

/** The check of a fixed token: its digest is made once, the token given is hashed per request. */
const acceptOnly = (expected: Redacted.Redacted<string>) => {
  const wanted = digest(Redacted.value(expected))
  return (token: Redacted.Redacted<string>): Effect.Effect<boolean> =>
    Effect.succeed(timingSafeEqual(digest(Redacted.value(token)), wanted))
}

const unauthorized = (error: GatewayUnauthorized) =>
  HttpServerResponse.jsonUnsafe(encodeUnauthorized(error), {
    status: 401,
    headers: { "www-authenticate": 'Bearer realm="effect-corps"' }
  })

const bearerOf = (request: HttpServerRequest.HttpServerRequest): Redacted.Redacted<string> => {
  const header = request.headers.authorization ?? ""
  const match = /^Bearer\s+(.+)$/i.exec(header)
  return Redacted.make(match?.[1]?.trim() ?? "")
}

/**
 * Every request no endpoint takes: an unknown Worker or method is a 404 with
 * `UnknownWorker` or `UnknownMethod` as its body, a known method asked with
 * another HTTP method a 405. Behind authentication, only after the token is
 * accepted, so the names of the Workers do not leak.
 */
const otherwise = (
  workers: ReadonlyArray<AnyWorker>,
  corps: string,
  verify: ((token: Redacted.Redacted<string>) => Effect.Effect<GatewayUnauthorized | undefined>) | undefined
) => {
  const methodsOf = new Map(workers.map((worker) => [worker.key, new Set(servedMethods(worker))]))
  return (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function* () {
      if (verify !== undefined) {
        const refused = yield* verify(bearerOf(request))
        if (refused !== undefined) return unauthorized(refused)
      }
      const path = new URL(request.url, "http://gateway").pathname
      const [workerName = "", method = ""] = path
        .split("/")
        .filter((part) => part !== "")
        .map(decodeURIComponent)
      const methods = methodsOf.get(workerName)
      if (methods === undefined) {
        return HttpServerResponse.jsonUnsafe(encodeUnknownWorker(new UnknownWorker({ worker: workerName, corps })), {
          status: 404
        })
      }
      if (!methods.has(method)) {
        return HttpServerResponse.jsonUnsafe(encodeUnknownMethod(new UnknownMethod({ worker: workerName, method })), {
          status: 404
        })
      }
      return HttpServerResponse.text(`${workerName}.${method} is called with POST\n`, {
        status: 405,
        headers: { allow: "POST" }
      })
    })
}

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)

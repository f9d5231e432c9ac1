/**
 * The HTTP gateway: Workers reachable from anything that speaks HTTP, with
 * the routes, the validation, the errors and the OpenAPI document all derived
 * from their contracts (described with `effect/http-api`, which makes the OpenAPI
 * document and the page).
 *
 * ```ts
 * import { Redacted } from "effect"
 * import { Gateway } from "effect-corps"
 *
 * // Served while the Layer lives; Counter and Shop are provided by a Corps below it.
 * const Http = Gateway.layer([Counter, Shop], { port: 8080, auth: { bearer: Redacted.make("s3cret") } })
 * const Live = Http.pipe(Layer.provide(Corps.layer([CounterLive, ShopLive])))
 * ```
 *
 * | request                                    | answers                                          |
 * | ------------------------------------------ | ------------------------------------------------ |
 * | `POST /{Worker}/{method}` + JSON body      | the success (JSON), or the typed error           |
 * | `POST /{Worker}/{method}?key=K`            | the same, on the instance with key `K`           |
 * | `POST` on a `stream: true` method          | NDJSON, one line per element                     |
 * | `GET /openapi.json`                        | the OpenAPI 3.1 document                         |
 * | `GET /docs`                                | the browsable API page (Scalar)                  |
 *
 * Errors are answered with the status of docs/external.md's table and the
 * tagged error, encoded by its Schema, as the body: a contract's own errors
 * with 422 (or the `httpApiStatus` they declare), effect-corps' call errors
 * with their own (`CallLost` 503, `CorpsMailboxFull` 429, …), a body the
 * payload Schema refuses with 400 (`InvalidPayload`), an unknown Worker or
 * method with 404, a missing or refused token with 401, a body over
 * `maxBodyBytes` with 413.
 *
 * @since 0.4.0
 */
import { Context, Effect, Layer, type Redacted } from "effect"
import { GatewayError } from "./CorpsError.ts"
import { checkListen, DEFAULT_HOST } from "./internal/listenOptions.ts"
import type { AnyWorker } from "./Worker.ts"

/**
 * What a gateway needs of a Worker: a contract class made by
 * `Worker.Service` (its name, methods and RPC group) — the class itself.
 *
 * @since 0.4.0
 * @category models
 */
export type Contract = Context.Key<any, any> & Pick<AnyWorker, "key" | "methods" | "group">

/**
 * How requests are authenticated: a bearer token, either the one accepted
 * token or a check of the token given (an Effect, so it may look it up).
 * Requests without an `Authorization: Bearer …` header, or whose token is
 * refused, are answered 401 (`GatewayUnauthorized`) before anything is
 * called. The OpenAPI document and the docs page stay public.
 *
 * @since 0.4.0
 * @category models
 */
export interface Auth {
  readonly bearer: Redacted.Redacted<string> | ((token: Redacted.Redacted<string>) => Effect.Effect<boolean>)
}

/**
 * Options of {@link layer}.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** The TCP port; 0 picks a free one (read it from the {@link Gateway} service). */
  readonly port: number
  /** The interface to listen on (default `127.0.0.1`; give `0.0.0.0` to serve other machines). */
  readonly host?: string | undefined
  /** Authentication (default: none — every request is served). */
  readonly auth?: Auth | undefined
  /** The largest request body read, in bytes (default 1 MiB): a larger one is refused with 413. */
  readonly maxBodyBytes?: number | undefined
  /** Where the OpenAPI document is served (default `/openapi.json`; `false`: not served). */
  readonly openapiPath?: `/${string}` | false | undefined
  /** Where the browsable API page is served (default `/docs`; `false`: not served). */
  readonly docsPath?: `/${string}` | false | undefined
  /** The API's title in the OpenAPI document (default `effect-corps gateway`). */
  readonly title?: string | undefined
}

/**
 * Where a running gateway listens.
 *
 * @since 0.4.0
 * @category models
 */
export interface Address {
  readonly host: string
  readonly port: number
  /** `http://host:port`, the base of every endpoint's URL. */
  readonly url: string
}

/**
 * The running gateway's address.
 *
 * @since 0.4.0
 * @category services
 */
export class Gateway extends Context.Service<Gateway, Address>()("effect-corps/Gateway") {}

/**
 * The Workers (contract classes) a Layer requires to serve `W`.
 *
 * @since 0.4.0
 * @category type-level
 */
export type Served<W extends ReadonlyArray<Contract>> = W[number] extends infer K
  ? K extends Context.Key<infer I, any>
    ? I
    : never
  : never

const DEFAULT_MAX_BODY = 1024 * 1024

/**
 * Serves `workers` over HTTP until the Layer's scope closes: one
 * `POST /{Worker}/{method}` endpoint per method of their contracts, the
 * OpenAPI document, the API page. It calls them through their handles, so
 * it serves them wherever their placement puts them (the caller's runtime,
 * threads, processes, a cluster); it requires the Workers, so provide a
 * Corps (or anything providing them) below it. Fails with `GatewayError`
 * when the options are invalid or the port cannot be listened on.
 *
 * @example
 * ```ts
 * const Live = Gateway.layer([Counter], { port: 0 }).pipe(Layer.provide(Corps.layer([CounterLive])))
 * const program = Effect.gen(function* () {
 *   const { url } = yield* Gateway.Gateway
 *   // curl -X POST $url/Counter/increment -d '{"by":2}'
 * })
 * ```
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = <const W extends ReadonlyArray<Contract>>(
  workers: W,
  options: Options
): Layer.Layer<Gateway, GatewayError, Served<W>> => {
  const host = options.host ?? DEFAULT_HOST
  const where = `${host}:${options.port}`
  const invalid = check(workers, options)
  if (invalid !== undefined) {
    return Layer.effectContext(
      Effect.fail(new GatewayError({ address: where, reason: "options", detail: invalid }))
    ) as Layer.Layer<Gateway, GatewayError>
  }
  const resolved = {
    port: options.port,
    host,
    where,
    auth: options.auth,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY,
    openapiPath: options.openapiPath === false ? undefined : (options.openapiPath ?? "/openapi.json"),
    docsPath: options.docsPath === false ? undefined : (options.docsPath ?? "/docs"),
    title: options.title ?? "effect-corps gateway"
  } as const
  // effect/http-api and the server load only when a gateway is built: importing effect-corps costs nothing without one.
  return Layer.unwrap(
    Effect.map(
      Effect.promise(() => import("./gateway/server.ts")),
      (server) => server.layer(workers as ReadonlyArray<Contract> as ReadonlyArray<AnyWorker>, resolved)
    )
  ) as Layer.Layer<Gateway, GatewayError, Served<W>>
}

const PATH_SEGMENT = /^[A-Za-z0-9_.~-]+$/

const check = (workers: ReadonlyArray<Contract>, options: Options): string | undefined => {
  const listen = checkListen(options.port, options.host)
  if (listen !== undefined) return listen
  if (
    options.maxBodyBytes !== undefined &&
    (!Number.isSafeInteger(options.maxBodyBytes) || options.maxBodyBytes <= 0)
  ) {
    return `maxBodyBytes must be a positive integer (got ${options.maxBodyBytes})`
  }
  for (const path of [options.openapiPath, options.docsPath]) {
    if (typeof path === "string" && !path.startsWith("/")) return `paths must start with / (got ${path})`
  }
  const seen = new Set<string>()
  for (const worker of workers) {
    if (seen.has(worker.key)) return `Worker ${worker.key} is given twice`
    seen.add(worker.key)
    if (!PATH_SEGMENT.test(worker.key)) {
      return `Worker name ${JSON.stringify(worker.key)} cannot be a path segment (letters, digits, _ . ~ - only)`
    }
  }
  return undefined
}

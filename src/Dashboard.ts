/**
 * The live dashboard: an HTTP server that shows the Corps built below it —
 * its tree of Workers, their rate, latency and errors, its Envs' threads and
 * processes, and a timeline of supervision and scaling events — updated
 * every second in a browser, and read by `corps status` and `corps top`.
 *
 * ```ts
 * import { Corps, Dashboard } from "effect-corps"
 *
 * // The Corps is built under the dashboard, so it reports to it.
 * const Live = App.pipe(Layer.provideMerge(Dashboard.layer({ port: 9400 })))
 * // then open http://127.0.0.1:9400/
 * ```
 *
 * | path            | answers                                                     |
 * | --------------- | ----------------------------------------------------------- |
 * | `/`             | the page (one HTML file, no build step, no framework)       |
 * | `/api/snapshot` | the `Snapshot` as JSON                                      |
 * | `/api/stream`   | Server-Sent Events: `snapshot` every second, each `event`   |
 * | `/metrics`      | Prometheus text of the caller's metric registry             |
 *
 * It binds to 127.0.0.1 unless told otherwise: it shows a program's
 * internals (Worker names, pids, error details) to whoever can reach it, and
 * has no authentication.
 *
 * @since 0.3.0
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Schedule, Schema, Stream } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { DashboardError } from "./CorpsError.ts"
import { CorpsEvent } from "./CorpsEvent.ts"
import * as Monitor from "./monitoring/Monitor.ts"
import { page } from "./monitoring/page.ts"
import { Snapshot } from "./monitoring/Snapshot.ts"

/**
 * Options of {@link layer}.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** The TCP port; 0 picks a free one (read it from the {@link Dashboard} service). */
  readonly port: number
  /** The interface to listen on (default `127.0.0.1`: the dashboard shows internals and has no authentication). */
  readonly host?: string | undefined
  /** How often `/api/stream` sends a snapshot (default 1000 ms). */
  readonly intervalMillis?: number | undefined
}

/**
 * Where a running dashboard listens.
 *
 * @since 0.3.0
 * @category models
 */
export interface Address {
  readonly host: string
  readonly port: number
  /** `http://host:port/`, what to open in a browser or give to `corps top`. */
  readonly url: string
}

/**
 * The running dashboard's address.
 *
 * @since 0.3.0
 * @category services
 */
export class Dashboard extends Context.Service<Dashboard, Address>()("effect-corps/Dashboard") {}

const DEFAULT_HOST = "127.0.0.1"

/**
 * Serves the dashboard of the Corps built below this Layer (it provides the
 * `Monitor` they report to), until its scope closes. Fails with
 * `DashboardError` when the options are invalid or the port cannot be
 * listened on.
 *
 * Per-method figures (calls, latency, failures) and the Envs' pids and
 * utilisation come from the metric registry: provide `Monitoring.layer`
 * too to record them; without it the page shows the tree, the Envs' slots
 * and the events.
 *
 * @example
 * ```ts
 * const Live = App.pipe(Layer.provideMerge(Dashboard.layer({ port: 9400 })), Layer.provide(NodeEnv.layer))
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Dashboard | Monitor.Monitor, DashboardError> => {
  const host = options.host ?? DEFAULT_HOST
  const where = `${host}:${options.port}`
  const invalid = check(options)
  if (invalid !== undefined) {
    return Layer.effectContext(
      Effect.fail(new DashboardError({ address: where, reason: "options", detail: invalid }))
    ) as Layer.Layer<Dashboard | Monitor.Monitor, DashboardError>
  }
  const server = NodeHttpServer.layer(createServer, { port: options.port, host }).pipe(
    Layer.catchTag("ServeError", (error) =>
      Layer.effectContext(
        Effect.fail(new DashboardError({ address: where, reason: "listen", detail: describeServeError(error.cause) }))
      )
    )
  )
  const address = Layer.effect(
    Dashboard,
    Effect.map(HttpServer.HttpServer, (server): Address => {
      const port = server.address._tag === "UnixPathAddress" ? options.port : server.address.port
      return { host, port, url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/` }
    })
  )
  const routes = HttpServer.serve(app(options.intervalMillis ?? 1000))
  return Layer.mergeAll(routes, address).pipe(Layer.provide(server), Layer.provideMerge(Monitor.Monitor.layer))
}

const check = (options: Options): string | undefined => {
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    return `port must be an integer from 0 to 65535 (got ${options.port})`
  }
  if (options.host !== undefined && options.host.trim() === "") return "host must not be empty"
  if (
    options.intervalMillis !== undefined &&
    (!Number.isFinite(options.intervalMillis) || options.intervalMillis < 50)
  ) {
    return `intervalMillis must be at least 50 (got ${options.intervalMillis})`
  }
  return undefined
}

const describeServeError = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : "the server could not start"

const encodeSnapshot = Schema.encodeSync(Snapshot)
const encodeEvent = Schema.encodeSync(CorpsEvent)
const encoder = new TextEncoder()

/** One Server-Sent Event. */
const sse = (event: string, data: unknown): Uint8Array =>
  encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)

/**
 * The live stream: a snapshot at once and then every `intervalMillis`, and
 * each event as it happens (so a restart shows on the timeline before the
 * next snapshot).
 */
const stream = (intervalMillis: number): Stream.Stream<Uint8Array, never, Monitor.Monitor> =>
  Stream.merge(
    Stream.fromEffectSchedule(Monitor.snapshot, Schedule.spaced(intervalMillis)).pipe(
      Stream.map((snapshot) => sse("snapshot", encodeSnapshot(snapshot)))
    ),
    Monitor.events.pipe(Stream.map((event) => sse("event", encodeEvent(event))))
  )

type Route = (intervalMillis: number) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, Monitor.Monitor>

const routes: Record<string, Route> = {
  "/": () => Effect.succeed(HttpServerResponse.text(page, { contentType: "text/html; charset=utf-8" })),
  "/api/snapshot": () =>
    Effect.map(Monitor.snapshot, (snapshot) =>
      HttpServerResponse.jsonUnsafe(encodeSnapshot(snapshot), { headers: { "cache-control": "no-store" } })
    ),
  "/api/stream": (intervalMillis) =>
    Effect.map(Effect.context<Monitor.Monitor>(), (context) =>
      HttpServerResponse.stream(stream(intervalMillis).pipe(Stream.provideContext(context)), {
        contentType: "text/event-stream",
        headers: { "cache-control": "no-store", connection: "keep-alive" }
      })
    ),
  "/metrics": () =>
    Effect.map(PrometheusMetrics.format(), (text) =>
      HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
    )
}

/** The dashboard's requests: GET (or HEAD) of a known path; 404 for another path, 405 for another method. */
const app = (intervalMillis: number) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = new URL(request.url, "http://dashboard").pathname
    const route = routes[path]
    if (route === undefined) {
      return HttpServerResponse.text(`not found: ${path}\n`, { status: 404 })
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return HttpServerResponse.text(`method ${request.method} not allowed on ${path}: use GET\n`, {
        status: 405,
        headers: { allow: "GET, HEAD" }
      })
    }
    return yield* route(intervalMillis)
  })

/**
 * The dashboard's HTTP server (`Dashboard.layer`): its routes, the live
 * stream, and the Node server under them. Loaded by `Dashboard.layer` only
 * when a dashboard is built.
 */
import { Effect, Layer, Schedule, Schema, Stream } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { DashboardError } from "../CorpsError.ts"
import { CorpsEvent } from "../CorpsEvent.ts"
import { type Address, Dashboard } from "../Dashboard.ts"
import { listening, nodeServer } from "../internal/httpServer.ts"
import { prometheus } from "../Monitoring.ts"
import * as Monitor from "./Monitor.ts"
import { page } from "./page.ts"
import { Snapshot } from "./Snapshot.ts"

/** Serves the dashboard at `options.host:options.port` (options already checked). */
export const layer = (options: {
  readonly port: number
  readonly host: string
  /** How the address is named in errors. */
  readonly where: string
  readonly intervalMillis?: number | undefined
}): Layer.Layer<Dashboard | Monitor.Monitor, DashboardError> => {
  const { host, where } = options
  const server = nodeServer(
    options.port,
    host,
    (detail) => new DashboardError({ address: where, reason: "listen", detail })
  )
  const address = Layer.effect(
    Dashboard,
    Effect.map(listening(host, options.port), (at): Address => ({ ...at, url: `${at.url}/` }))
  )
  const routes = HttpServer.serve(app(options.intervalMillis ?? 1000))
  return Layer.mergeAll(routes, address).pipe(Layer.provide(server), Layer.provideMerge(Monitor.Monitor.layer))
}

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
    Effect.map(prometheus, (text) =>
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

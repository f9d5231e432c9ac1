/**
 * What the dashboard's and the gateway's HTTP servers share: a Node server
 * on `host:port` whose failure to listen becomes the caller's typed error,
 * and the address it listens at. Imported only by those servers, which load
 * lazily (importing effect-corps does not load the HTTP platform).
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"

/** A Node HTTP server on `host:port`; a failure to listen (port in use, unknown host) fails with `listenError`. */
export const nodeServer = <E>(port: number, host: string, listenError: (detail: string) => E) =>
  NodeHttpServer.layer(createServer, { port, host }).pipe(
    Layer.catchTag("ServeError", (error) => Layer.effectContext(Effect.fail(listenError(describe(error.cause)))))
  )

/** Where a server listens: `url` is `http://host:port`, with no trailing slash. */
export interface Listening {
  readonly host: string
  readonly port: number
  readonly url: string
}

/** The address the server listens at: the port it was given, or the one picked when that was 0. */
export const listening = (host: string, port: number): Effect.Effect<Listening, never, HttpServer.HttpServer> =>
  Effect.map(HttpServer.HttpServer, (server) => {
    const bound = server.address._tag === "UnixPathAddress" ? port : server.address.port
    return { host, port: bound, url: `http://${host.includes(":") ? `[${host}]` : host}:${bound}` }
  })

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : "the server could not start"

/**
 * The live dashboard: an HTTP server that shows the Corps built below it —
 * its tree of Workers, their rate, latency and errors, its Envs' threads and
 * processes, and a timeline of supervision and scaling events — updated
 * every second in a browser, and read by `corps status` and `corps top`.
 *
 * ```ts
 * import { Dashboard, Monitoring } from "effect-corps"
 *
 * // The Corps is built under the dashboard (and Monitoring, for the figures), so it reports to them.
 * const Live = App.pipe(Layer.provideMerge(Dashboard.layer({ port: 9400 })), Layer.provideMerge(Monitoring.layer()))
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
import { Context, Effect, Layer } from "effect"
import { DashboardError } from "./CorpsError.ts"
import { checkListen, DEFAULT_HOST } from "./internal/listenOptions.ts"
import type * as Monitor from "./monitoring/Monitor.ts"

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
 * const Live = App.pipe(
 *   Layer.provideMerge(Dashboard.layer({ port: 9400 })),
 *   Layer.provideMerge(Monitoring.layer()),
 *   Layer.provide(NodeEnv.layer)
 * )
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
  // The HTTP server, the page and the Prometheus formatter load only when a dashboard is built:
  // importing effect-corps costs nothing for programs without one.
  return Layer.unwrap(
    Effect.map(
      Effect.promise(() => import("./monitoring/server.ts")),
      (server) => server.layer({ ...options, host, where })
    )
  )
}

const check = (options: Options): string | undefined => {
  const listen = checkListen(options.port, options.host)
  if (listen !== undefined) return listen
  if (
    options.intervalMillis !== undefined &&
    (!Number.isFinite(options.intervalMillis) || options.intervalMillis < 50)
  ) {
    return `intervalMillis must be at least 50 (got ${options.intervalMillis})`
  }
  return undefined
}

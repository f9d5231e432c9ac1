/**
 * Monitoring: metrics of every Worker method and Env, spans for every call
 * across every Env, and annotated log lines — opt-in, as a Layer below the
 * Corps. Without it nothing is recorded and no call path changes.
 *
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Corps, Monitoring } from "effect-corps"
 *
 * const App = Corps.layer([CounterLive], { module: import.meta.url }).pipe(
 *   Layer.provideMerge(Monitoring.layer({ tracing: { sampleRate: 0.1 }, otlp: { url: "http://collector:4318/v1/traces" } }))
 * )
 * const text = yield* Monitoring.prometheus // the Prometheus exposition of the whole Corps
 * ```
 *
 * Metric names and attributes: `Monitoring.metrics` (src/monitoring/metrics.ts)
 * and docs/monitoring.md.
 *
 * @since 0.3.0
 */
import { Effect, Layer, Schema } from "effect"
import { type LogFormat, loggerLayer, MonitoringSettings, type Settings } from "./internal/monitoring.ts"

/**
 * The metric definitions (names, types, attributes): see
 * src/monitoring/metrics.ts.
 *
 * @since 0.3.0
 * @category metrics
 */
export * as metrics from "./monitoring/metrics.ts"

/**
 * Options of {@link layer}.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Record metrics (default `true`). */
  readonly metrics?: boolean | undefined
  /**
   * Open a span named `Worker.method` for every call, in every Env (default
   * off). `true` samples every root call; `{ sampleRate }` a share of them
   * (0 to 1). A call made under a span follows its parent's decision.
   *
   * A call to another Env is one span, made where its handler runs, unless
   * `clientSpans` is set: then the caller also makes a `client` span around
   * the round trip (transport included), at about twice the cost per call.
   * Default: `true` without `otlp` (the Envs' spans are not exported then,
   * so the caller's Tracer is the only place a call is seen), `false` with it.
   */
  readonly tracing?:
    | boolean
    | { readonly sampleRate?: number | undefined; readonly clientSpans?: boolean | undefined }
    | undefined
  /**
   * Export spans through OTLP over HTTP (JSON) to `url` (a collector's
   * `/v1/traces`): from the caller (this Layer provides the Tracer) and from
   * every thread and process Env (each exports its own). Absent: spans go to
   * whatever Tracer the program provides, and Envs' spans are not exported.
   */
  readonly otlp?:
    | {
        readonly url: string
        readonly headers?: Readonly<Record<string, string>> | undefined
        /** The `service.name` resource attribute (default `"effect-corps"`). */
        readonly serviceName?: string | undefined
      }
    | undefined
  /** How often the caller collects its Envs' figures, in milliseconds (default 1000). */
  readonly intervalMillis?: number | undefined
  /**
   * Write log lines in this format, in the caller (this Layer provides the
   * Logger) and in every thread and process Env: `"json"`
   * (`Logger.consoleJson`), `"logfmt"` (`Logger.consoleLogFmt`) or
   * `"pretty"`. Absent: the caller keeps the Logger it has (provide your own)
   * and Envs log with effect's default.
   */
  readonly logFormat?: LogFormat | undefined
}

/**
 * `Monitoring.layer` was given options it cannot use; `option` names the
 * bad one and `reason` says why.
 *
 * @since 0.3.0
 * @category errors
 */
export class MonitoringError extends Schema.TaggedError<MonitoringError>()("MonitoringError", {
  option: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid monitoring option ${this.option}: ${this.reason}`
  }
}

/**
 * Checks `options` and resolves their defaults.
 *
 * @since 0.3.0
 * @category constructors
 */
export const settings = (options: Options = {}): Effect.Effect<Settings, MonitoringError> =>
  Effect.gen(function* () {
    const tracing = options.tracing
    let sampleRate: number | undefined
    if (tracing === true) sampleRate = 1
    else if (typeof tracing === "object") sampleRate = tracing.sampleRate ?? 1
    const clientSpans = typeof tracing === "object" ? tracing.clientSpans : undefined
    if (clientSpans !== undefined && typeof clientSpans !== "boolean") {
      return yield* new MonitoringError({
        option: "tracing.clientSpans",
        reason: `true or false, got ${JSON.stringify(clientSpans)}`
      })
    }
    if (sampleRate !== undefined && !(sampleRate >= 0 && sampleRate <= 1)) {
      return yield* new MonitoringError({
        option: "tracing.sampleRate",
        reason: `a share of calls from 0 to 1, got ${sampleRate}`
      })
    }
    const interval = options.intervalMillis ?? 1000
    if (!(Number.isFinite(interval) && interval >= 10)) {
      return yield* new MonitoringError({ option: "intervalMillis", reason: `10 ms or more, got ${interval}` })
    }
    const otlp = options.otlp
    if (otlp !== undefined && !URL.canParse(otlp.url)) {
      return yield* new MonitoringError({ option: "otlp.url", reason: `not a URL: ${JSON.stringify(otlp.url)}` })
    }
    const logFormat = options.logFormat
    if (logFormat !== undefined && !["json", "logfmt", "pretty"].includes(logFormat)) {
      return yield* new MonitoringError({
        option: "logFormat",
        reason: `"json", "logfmt" or "pretty", got ${JSON.stringify(logFormat)}`
      })
    }
    return {
      logFormat,
      metrics: options.metrics ?? true,
      tracing: sampleRate === undefined ? undefined : { sampleRate, clientSpans: clientSpans ?? otlp === undefined },
      otlp: otlp === undefined ? undefined : { ...otlp, url: otlp.url },
      intervalMillis: interval
    }
  })

/**
 * Turns monitoring on for the Corps built below it: metrics into the
 * program's `Metric.MetricRegistry` (so `Metric.snapshot` and
 * {@link prometheus} see every Env of the Corps), spans when `tracing` is
 * set, exported over OTLP when `otlp` is set. Use `Layer.provideMerge` so
 * that the program's own spans reach the same Tracer.
 *
 * @example
 * ```ts
 * const App = Corps.layer([HasherLive], { module: import.meta.url }).pipe(
 *   Layer.provideMerge(Monitoring.layer({ tracing: true })),
 *   Layer.provide(NodeEnv.layer)
 * )
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<never, MonitoringError> =>
  Layer.unwrap(
    Effect.map(settings(options), (resolved) => {
      const base = Layer.succeed(MonitoringSettings, resolved) as Layer.Layer<never>
      const settingsLayer =
        resolved.logFormat === undefined ? base : Layer.mergeAll(base, loggerLayer(resolved.logFormat))
      if (resolved.otlp === undefined || resolved.tracing === undefined) return settingsLayer
      const otlp = resolved.otlp
      // Loaded only when asked for: a program without an OTLP endpoint never imports the exporter.
      const tracer = Layer.unwrap(
        Effect.map(
          Effect.promise(() => import("./monitoring/otlp.ts")),
          (module) => module.tracerLayer(otlp, {})
        )
      )
      return Layer.mergeAll(settingsLayer, tracer)
    })
  )

/**
 * The Prometheus text exposition of every metric in the program's registry:
 * the whole Corps (its Envs' figures included, as of their last collection)
 * and the program's own metrics.
 *
 * @example
 * ```ts
 * const text = yield* Monitoring.prometheus
 * ```
 *
 * @since 0.3.0
 * @category prometheus
 */
export const prometheus: Effect.Effect<string> = Effect.flatMap(
  // Its module brings effect's HTTP router along: imported on first use, not by every program.
  Effect.promise(() => import("effect/observability/PrometheusMetrics")),
  (PrometheusMetrics) => PrometheusMetrics.format()
)

/**
 * Monitoring as the runtime sees it: the settings `Monitoring.layer` puts in
 * context (read once, when a Corps is built), what an Env is told of them,
 * and the per-runtime monitor that wraps Targets (src/internal/observe.ts)
 * and records into a Recorder (src/internal/recorder.ts).
 */
import { Context, type Layer, Logger, Metric } from "effect"
import type { AnyWorker } from "../Worker.ts"
import type { Target } from "./handle.ts"
import { type Observe, observeTarget } from "./observe.ts"
import { type CallSeries, Recorder } from "./recorder.ts"

/** Monitoring settings, resolved and checked (`Monitoring.layer`). Plain data: an Env is told them. */
export interface Settings {
  readonly metrics: boolean
  /**
   * Spans for every call, sampled at `sampleRate` at the root; absent: no
   * spans. `clientSpans`: a call to another Env is also a span in its caller
   * (else only where its handler runs).
   */
  readonly tracing: { readonly sampleRate: number; readonly clientSpans: boolean } | undefined
  /** Where every Env exports its spans (OTLP over HTTP, JSON); absent: Envs open spans but export none. */
  readonly otlp:
    | {
        readonly url: string
        readonly headers?: Readonly<Record<string, string>> | undefined
        readonly serviceName?: string | undefined
      }
    | undefined
  /** How often the caller collects the figures of its thread and process Envs, in milliseconds. */
  readonly intervalMillis: number
  /** The log format of the caller and of every Env; absent: each keeps the Logger it has. */
  readonly logFormat: LogFormat | undefined
}

/** A log line format effect's Logger module provides. */
export type LogFormat = "json" | "logfmt" | "pretty"

/** The console Logger of a format, replacing the default one. */
export const loggerLayer = (format: LogFormat): Layer.Layer<never> =>
  Logger.layer([
    format === "json" ? Logger.consoleJson : format === "logfmt" ? Logger.consoleLogFmt : Logger.consolePretty()
  ])

/** The settings in context, for a Corps built below `Monitoring.layer`. */
export class MonitoringSettings extends Context.Service<MonitoringSettings, Settings>()(
  "effect-corps/MonitoringSettings"
) {}

/** What a thread or process Env is told of monitoring (in its EnvInit). */
export interface EnvMonitoring {
  readonly settings: Settings
  /** The Corps' name (the `corps` attribute). */
  readonly corpsName: string
  /** The Env each Worker of the Corps is placed in, by Worker name (the `env` attribute). */
  readonly envOf: Readonly<Record<string, string>>
}

/** Monitoring of one built runtime (the caller's, or one Env's). */
export class RuntimeMonitor {
  readonly settings: Settings
  /** Recorder of calls made in this runtime; undefined when metrics are off. */
  readonly recorder: Recorder | undefined
  /** The Env a Worker is placed in, by name. */
  readonly envOf: (worker: string) => string
  /** This runtime's Env (`local` for the caller). */
  readonly here: string
  /** Log annotations of handlers' lines in this runtime (undefined: not annotated). */
  readonly logAnnotations: Readonly<Record<string, string>> | undefined
  private readonly registry: Context.Context<never> | undefined
  /** Every call made here crosses to another runtime (a cluster's entities): time each one. */
  private readonly allRemote: boolean

  constructor(options: {
    readonly settings: Settings
    readonly corpsName: string
    readonly here: string
    readonly envOf: (worker: string) => string
    /** The caller's context (its MetricRegistry); undefined in an Env, whose figures the caller collects. */
    readonly registry: Context.Context<never> | undefined
    readonly annotateLogs: boolean
    /** Every call made here goes to another runtime, whatever Env it names (an embedded cluster's entities). */
    readonly allRemote?: boolean | undefined
  }) {
    this.settings = options.settings
    this.allRemote = options.allRemote ?? false
    this.envOf = options.envOf
    this.here = options.here
    this.registry = options.registry
    this.recorder = options.settings.metrics
      ? new Recorder(options.corpsName, options.here, options.registry)
      : undefined
    this.logAnnotations = options.annotateLogs ? { corps: options.corpsName, env: options.here } : undefined
  }

  /** The same monitoring for a Corps nested in this one (its own `corps` attribute). */
  nested(corpsName: string): RuntimeMonitor {
    return new RuntimeMonitor({
      settings: this.settings,
      corpsName,
      here: this.here,
      envOf: this.envOf,
      registry: this.registry,
      annotateLogs: this.logAnnotations !== undefined,
      allRemote: this.allRemote
    })
  }

  /** The observed Targets of `worker`: made once per Worker (its series once per method). */
  observe(worker: AnyWorker, targetOf: (key: string) => Target): (key: string) => Target {
    const env = this.envOf(worker.key)
    let series: Record<string, CallSeries> | undefined
    if (this.recorder !== undefined) {
      series = {}
      // Reading the clock twice costs more than a FastPath call: those are timed once per tick (see CallSeries).
      const timeAll = this.allRemote || env !== this.here
      for (const method of Object.keys(worker.methods)) {
        const s = this.recorder.callSeries(worker.key, method, env)
        s.timeAll = timeAll
        series[method] = s
      }
    }
    const observe: Observe = {
      series,
      tracing: this.settings.tracing,
      logAnnotations: this.logAnnotations,
      worker: worker.key,
      env,
      perMethod: new Map()
    }
    return (key) => observeTarget(targetOf(key), observe)
  }
}

/** The caller's registry context, from the context a Corps is built in. */
export const registryOf = (outer: Context.Context<never>): Context.Context<never> =>
  Context.make(Metric.MetricRegistry, Context.get(outer, Metric.MetricRegistry))

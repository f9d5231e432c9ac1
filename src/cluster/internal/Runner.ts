/**
 * A runner, as a layer: the module's implementations served as entities on a
 * PostgreSQL-backed cluster process. The `corps runner` command
 * (src/cli/Runner.ts) builds this layer.
 */
import { isAbsolute, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Layer, Metric } from "effect"
import { RuntimeMonitor } from "../../internal/monitoring.ts"
import * as Cluster from "../Cluster.ts"
import * as RunnerLoad from "../RunnerLoad.ts"
import * as Module from "./Module.ts"
import { Totals } from "./RunnerFigures.ts"
import { layerServe } from "./Serve.ts"

/**
 * The `env` a runner puts in its figures: every Worker it reaches is on the
 * cluster, which each caller names in its own placement; the caller puts
 * that name in its place.
 */
const CLUSTER = "cluster"

/**
 * A runner counts the calls its Workers make (to entities, through their
 * handles), always: they cost a cluster round trip each, against a few
 * field writes to count. It cannot know whether a caller has monitoring on,
 * and the figures are a column of the load row it writes anyway.
 */
const runnerMonitor = (): RuntimeMonitor =>
  new RuntimeMonitor({
    settings: { metrics: true, tracing: undefined, otlp: undefined, intervalMillis: 1000, logFormat: undefined },
    corpsName: CLUSTER,
    // Not the Workers' Env: a call from here is a call to another process, timed every time.
    here: "runner",
    envOf: () => CLUSTER,
    registry: undefined,
    annotateLogs: false
  })

/**
 * The layer of a runner serving `served`: one entity per implementation, on a
 * PostgreSQL-backed cluster process listening at `runner`, which reports its
 * load every second (RunnerLoad). The builders get
 * the runner's `SqlClient` and a handle for every Worker the module exports
 * (reached through the cluster).
 */
export const layer = (
  served: Module.Served,
  options: { readonly settings: Cluster.Settings; readonly runner: Cluster.Runner }
): Layer.Layer<Cluster.Services, Cluster.SettingsMismatch | Cluster.SettingsInvalid | Cluster.ClusterStartError> => {
  // Made when the layer is built: each build of a runner counts from zero.
  const layers = Layer.unwrap(
    Effect.sync(() => {
      const monitor = runnerMonitor()
      const totals = new Totals()
      const figures = Effect.map(Metric.snapshot, (metrics) => {
        totals.add(monitor.recorder!.drain())
        return totals.figures(metrics, CLUSTER)
      })
      return serving(served, options, monitor, figures)
    })
  )
  return layers.pipe(
    Layer.provideMerge(Cluster.layerSql({ settings: options.settings, runner: options.runner }))
  ) as Layer.Layer<Cluster.Services, Cluster.SettingsMismatch | Cluster.SettingsInvalid | Cluster.ClusterStartError>
}

/** The entities, and the load report with the runner's figures. */
const serving = (
  served: Module.Served,
  options: { readonly settings: Cluster.Settings; readonly runner: Cluster.Runner },
  monitor: RuntimeMonitor,
  figures: Effect.Effect<RunnerLoad.Figures>
) =>
  Layer.mergeAll(
    layerServe({
      serve: [...served.implementations.values()],
      all: served.implementations,
      corps: Cluster.handleCorps(options.settings),
      publish: true,
      monitor
    }),
    // Its load and figures, for whatever decides how many runners to run (RunnerLoad.recommender,
    // docs/scaling.md) and for the monitoring of every caller (src/cluster/internal/RunnerWatch.ts).
    Layer.catch(
      RunnerLoad.layerReport({
        runner: `${options.runner.host}:${options.runner.port}`,
        prefix: options.settings.prefix,
        figures
      }),
      (error) => Layer.effectDiscard(Effect.logWarning("effect-corps: this runner will not report its load", error))
    )
  )

/**
 * A module given as a path (relative to the working directory) or a URL, as
 * a URL. A drive letter (`C:\app.ts`) is a path, not a URL scheme.
 */
export const toUrl = (module: string): string =>
  /^[a-z][a-z0-9+.-]+:/i.test(module) && !/^[a-z]:[\\/]/i.test(module)
    ? module
    : pathToFileURL(isAbsolute(module) ? module : resolve(module)).href

/** Imports the module named by a path or URL and collects what it serves. */
export const load = (module: string): Effect.Effect<Module.Served, Module.ModuleError> => Module.load(toUrl(module))

/** Collects what a module's exports serve (for runners that import it themselves). */
export const collect = Module.collect

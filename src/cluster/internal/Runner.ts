/**
 * A runner, as a layer: the module's implementations served as entities on a
 * PostgreSQL-backed cluster process. The `corps runner` command
 * (src/cli/Runner.ts) builds this layer.
 */
import { isAbsolute, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Layer } from "effect"
import * as Cluster from "../Cluster.ts"
import * as RunnerLoad from "../RunnerLoad.ts"
import * as Module from "./Module.ts"
import { layerServe } from "./Serve.ts"

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
): Layer.Layer<Cluster.Services, Cluster.SettingsMismatch | Cluster.SettingsInvalid | Cluster.ClusterStartError> =>
  Layer.mergeAll(
    layerServe({
      serve: [...served.implementations.values()],
      all: served.implementations,
      corps: Cluster.handleCorps(options.settings),
      publish: true
    }),
    // Its load, for whatever decides how many runners to run (RunnerLoad.recommender, docs/scaling.md).
    Layer.catch(
      RunnerLoad.layerReport({
        runner: `${options.runner.host}:${options.runner.port}`,
        prefix: options.settings.prefix
      }),
      (error) => Layer.effectDiscard(Effect.logWarning("effect-corps: this runner will not report its load", error))
    )
  ).pipe(Layer.provideMerge(Cluster.layerSql({ settings: options.settings, runner: options.runner }))) as Layer.Layer<
    Cluster.Services,
    Cluster.SettingsMismatch | Cluster.SettingsInvalid | Cluster.ClusterStartError
  >

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

/**
 * What a cluster runner process builds: the entities of a module's Workers on
 * a PostgreSQL-backed cluster. The process itself is the `corps runner`
 * command (src/cli/Runner.ts).
 *
 * @since 0.1.0
 */
import { Layer } from "effect"
import * as Cluster from "./Cluster.ts"
import type * as Module from "./Module.ts"
import { layerServe } from "./Serve.ts"

/**
 * The layer of a runner serving `served`: one entity per implementation, on a
 * PostgreSQL-backed cluster process listening at `runner`. The builders get
 * the runner's `SqlClient` and a handle for every Worker the module exports
 * (reached through the cluster).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  served: Module.Served,
  options: { readonly settings: Cluster.Settings; readonly runner: Cluster.Runner }
): Layer.Layer<Cluster.Services, Cluster.SettingsMismatch | Cluster.ClusterStartError> =>
  layerServe({
    serve: [...served.implementations.values()],
    all: served.implementations,
    options: served.options,
    corps: Cluster.handleCorps(options.settings),
    publish: true
  }).pipe(Layer.provideMerge(Cluster.layerSql({ settings: options.settings, runner: options.runner }))) as Layer.Layer<
    Cluster.Services,
    Cluster.SettingsMismatch | Cluster.ClusterStartError
  >

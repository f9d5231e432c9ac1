/**
 * The `cluster` Env kind: Workers served as `effect/cluster` entities.
 *
 * ```ts
 * import { ClusterEnv } from "effect-corps/cluster"
 *
 * const App = Corps.layer([AccountLive], {
 *   module: import.meta.url,
 *   placement: { envs: { c: { kind: "cluster", storage: "sql" } }, workers: { Account: { env: "c" } } }
 * }).pipe(Layer.provide(ClusterEnv.layer()))
 * ```
 *
 * - `storage: "sql"`: this process joins the cluster as a **client**; the
 *   Workers are served by runner processes (the runner command) that
 *   import the same module. Settings come from the environment
 *   (`CORPS_DATABASE_URL`, `CORPS_CLUSTER_SECRET`, …) or the layer's options.
 * - `storage: "local"`: an embedded cluster in this process (memory storage,
 *   no server): the Workers are built here, as entities. For development and
 *   tests of cluster semantics on one machine.
 * - no `storage`: `sql` when a database URL is configured, else `local`.
 *
 * Handles of Workers on runners carry the cluster's Corps id
 * (`cluster:<prefix>`, see `Cluster.handleCorps`) rather than the caller's:
 * passed to a Worker on a runner, or returned by one, a handle reaches the
 * same entity.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, type Scope, Stream } from "effect"
import type { SqlClient } from "effect/sql"
import { CorpsClosed, EnvStartError } from "../CorpsError.ts"
import { remoteTarget } from "../internal/dispatch.ts"
import { type EnvOf, type EnvProvider, layer as EnvProviderLayer, type StartRequest } from "../internal/envProvider.ts"
import type { Target } from "../internal/handle.ts"
import { messageOf } from "../internal/message.ts"
import { RuntimeMonitor, registryOf } from "../internal/monitoring.ts"
import { Monitor } from "../monitoring/Monitor.ts"
import type { AnyImplementation } from "../Worker.ts"
import * as Cluster from "./Cluster.ts"
import { targetsOf } from "./internal/Entities.ts"
import * as Module from "./internal/Module.ts"
import * as RunnerWatch from "./internal/RunnerWatch.ts"
import { layerServe } from "./internal/Serve.ts"

const withMembers = (impls: ReadonlyArray<AnyImplementation>): Array<AnyImplementation> =>
  impls.flatMap((impl) => [impl, ...withMembers(impl.members)])

/** The settings of a cluster Env, and its storage (`sql` when a database URL is configured, else `local`). */
const settingsOf = (overrides: Cluster.Settings, env: EnvOf<"cluster">, fail: (reason: string) => EnvStartError) =>
  Effect.map(
    Effect.mapError(Cluster.settingsFromEnv, (e) => fail(e.message)),
    (fromEnv) => {
      const settings: Cluster.Settings = { ...fromEnv, ...overrides }
      return { settings, storage: env.storage ?? (settings.databaseUrl === undefined ? "local" : "sql") }
    }
  )

const provider = (overrides: Cluster.Settings): EnvProvider<"cluster"> => ({
  // On runners (`sql`), handles carry the cluster's id, which every runner registers: so a handle passed to a
  // runner resolves there, and one coming back resolves here (the Corps registers it too). The embedded
  // cluster builds its entities in this process, under the caller's own id.
  handleCorps: ({ envName, env, module }) =>
    Effect.map(
      settingsOf(overrides, env, (reason) => new EnvStartError({ env: envName, module, reason })),
      ({ settings, storage }) => (storage === "sql" ? Cluster.handleCorps(settings) : undefined)
    ),
  start: (request: StartRequest<"cluster">) =>
    Effect.gen(function* () {
      const fail = (reason: string) => new EnvStartError({ env: request.envName, module: request.module, reason })
      const { settings, storage } = yield* settingsOf(overrides, request.env, fail)
      // Runners and callers agree on per-Worker options: both read them from the implementations
      // (the caller from those it was given, runners from the module they import).

      let layer: Layer.Layer<Cluster.Services, unknown>
      if (storage === "sql") {
        layer = Cluster.layerSql({ settings })
      } else {
        // The embedded cluster: the Workers placed here become entities of this process; the
        // module's other Workers stay where the caller placed them, reached through its dispatcher.
        // Private members (Corps.make) live with their Corps: served here too.
        // Only the embedded cluster imports the module here (for the handles of the module's other
        // Workers): a caller of runners never does, so a program may await its Corps at top level.
        const served = yield* Effect.mapError(Module.load(request.module), (e) => fail(e.reason))
        const here = withMembers(request.workers.map(({ impl }) => impl))
        const placedHere = new Set(here.map((impl) => impl.worker.key))
        const all = new Map(served.implementations)
        for (const impl of here) all.set(impl.worker.key, impl)
        const outer = yield* Effect.context<never>()
        const monitoring = request.monitoring
        layer = layerServe({
          serve: here,
          all,
          corps: request.corps,
          elsewhere: (impl) =>
            placedHere.has(impl.worker.key)
              ? undefined
              : (key) => remoteTarget(impl.worker, key, (call) => request.dispatcher.dispatch(call)),
          publish: false,
          // The calls its entities make (the caller's own calls are counted at the caller's handles),
          // straight into the caller's registry, as made by this Env.
          monitor:
            monitoring?.recorder === undefined
              ? undefined
              : new RuntimeMonitor({
                  settings: { ...monitoring.settings, tracing: undefined },
                  corpsName: monitoring.corpsName,
                  here: request.envName,
                  envOf: (worker) => monitoring.envOf[worker] ?? request.envName,
                  registry: registryOf(outer),
                  annotateLogs: false,
                  allRemote: true
                })
        }).pipe(Layer.provideMerge(Cluster.layerLocal), Layer.provide(Layer.succeedContext(outer))) as Layer.Layer<
          Cluster.Services,
          unknown
        >
      }
      const context = yield* Layer.build(layer).pipe(Effect.mapError((e) => fail(messageOf(e))))
      const monitoring = request.monitoring
      const recorder = monitoring?.recorder
      if (storage === "sql" && monitoring !== undefined && recorder !== undefined) {
        const dashboard = yield* Effect.serviceOption(Monitor)
        yield* Effect.provideContext(
          RunnerWatch.watch({
            envName: request.envName,
            corpsId: request.corps,
            corpsName: monitoring.corpsName,
            prefix: settings.prefix,
            recorder,
            intervalMillis: monitoring.settings.intervalMillis,
            monitor: dashboard._tag === "Some" ? dashboard.value : undefined
          }),
          Context.merge(
            context as unknown as Context.Context<SqlClient.SqlClient>,
            yield* Effect.context<Scope.Scope>()
          )
        )
      }
      // Once the Corps is closed its handles fail fast, whatever the cluster's state.
      let closed = false
      yield* Effect.addFinalizer(() => Effect.sync(() => (closed = true)))
      const targets = new Map<string, (key: string) => Target>()
      for (const { impl } of request.workers) {
        const targetOf = yield* Effect.provideContext(targetsOf(impl), context as Context.Context<any>)
        const closedError = new CorpsClosed({ corps: request.corps })
        targets.set(impl.worker.key, (key) => {
          const target = targetOf(key)
          return {
            call: (method, payload) => (closed ? Effect.fail(closedError) : target.call(method, payload)),
            stream: (method, payload) => (closed ? Stream.fail(closedError) : target.stream(method, payload))
          }
        })
      }
      return targets
    })
})

/**
 * Provides the `cluster` Env kind to the Corps built below it. `settings`
 * override those read from the environment.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (settings?: Cluster.Settings): Layer.Layer<never> =>
  EnvProviderLayer("cluster", provider(settings ?? {}))

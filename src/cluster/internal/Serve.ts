/**
 * Serving a module's Workers as entities, with their siblings in reach.
 *
 * An implementation's builder may use other Workers (`yield* Counter`), as it
 * does in every Env. On a runner those are handles whose Targets go through
 * the cluster (every Worker the module exports is an entity type of the
 * cluster), except Workers the caller keeps elsewhere (`elsewhere`), which the
 * embedded cluster reaches through the caller's dispatcher.
 */
import { type Context, Effect, Layer } from "effect"
import type { Sharding } from "effect/cluster/Sharding"
import type { Location } from "../../internal/create.ts"
import type { Target } from "../../internal/handle.ts"
import type { RuntimeMonitor } from "../../internal/monitoring.ts"
import { CorpsRuntime } from "../../internal/runtime.ts"
import type { AnyImplementation } from "../../Worker.ts"
import { layerEntity, targetsOf } from "./Entities.ts"

/**
 * What to serve and with which siblings.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServeOptions {
  /** The implementations to register as entities on this runner. */
  readonly serve: ReadonlyArray<AnyImplementation>
  /** Every Worker the builders may use, by name (the module's exports). */
  readonly all: ReadonlyMap<string, AnyImplementation>
  /** The Corps id handles made here carry (a caller's id, or one of the runner's own). */
  readonly corps: string
  /** Workers not served by the cluster, and how to reach them; the rest go through the cluster. */
  readonly elsewhere?: ((impl: AnyImplementation) => ((key: string) => Target) | undefined) | undefined
  /** Register the handles' Corps in this runtime (runners: yes; the caller's own process: no, it already is). */
  readonly publish: boolean
  /**
   * Counts the calls the served Workers make through their handles (calls
   * they are sent are counted by whoever sends them); absent: not counted.
   */
  readonly monitor?: RuntimeMonitor | undefined
}

/**
 * Registers `serve` as entities; their builders see a handle for every Worker
 * of `all`, plus whatever the layer is given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServe = (options: ServeOptions): Layer.Layer<never, never, Sharding> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const outer = yield* Effect.context<never>()
      const remote = new Map<string, (key: string) => Target>()
      // A runner does not know the placement, but it knows which Workers are entities: `create`
      // of one of them in a handler here refuses `perEnv` and slots as the caller does.
      const locations = new Map<string, Location>()
      for (const [name, impl] of options.all) {
        const elsewhere = options.elsewhere?.(impl)
        remote.set(name, elsewhere ?? (yield* targetsOf(impl)))
        if (elsewhere === undefined) locations.set(name, { env: "cluster", kind: "cluster", slots: [] })
      }
      const monitor = options.monitor
      const runtime = new CorpsRuntime({
        name: "cluster",
        id: options.corps,
        resolved: new Map(),
        scope,
        remote,
        locations,
        monitor
      })
      const handles = yield* runtime.build([...options.all.values()], outer)
      if (options.publish) runtime.publish()
      else if (monitor?.recorder !== undefined) {
        // `publish` closes the recorder with the runtime; unpublished, its series leave the registry here.
        const recorder = monitor.recorder
        yield* Effect.addFinalizer(() => Effect.sync(() => recorder.close()))
      }
      return Layer.mergeAll(Layer.empty, ...options.serve.map((impl) => layerEntity(impl))).pipe(
        Layer.provide(Layer.succeedContext(handles as Context.Context<any>))
      )
    })
  ) as Layer.Layer<never, never, Sharding>

/**
 * The seam between a Corps and the Envs it places Workers in. The core knows
 * only this interface; `effect-corps/node` provides threads and processes,
 * `effect-corps/cluster` the cluster. A provider starts the Envs of one Env
 * name and returns, for each Worker placed there, how to reach an instance.
 *
 * For Env implementers; applications only provide the layers.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Scope } from "effect"
import type { EnvStartError } from "./CorpsError.ts"
import type * as Env from "./Env.ts"
import type { Dispatcher } from "./internal/dispatch.ts"
import type { Target } from "./internal/handle.ts"
import type * as Placement from "./Placement.ts"
import type { AnyImplementation } from "./Worker.ts"

/**
 * What a provider is asked to start.
 *
 * @since 0.1.0
 * @category models
 */
export interface StartRequest {
  /** The Corps' id: every Env of the Corps registers its Workers under it, so handles resolve everywhere. */
  readonly corps: string
  /** The URL of the module that exports the Corps' implementations (each Env imports it). */
  readonly module: string
  /** The Env's name in the placement, and its settings. */
  readonly envName: string
  readonly env: Env.Env
  /** The Workers placed in this Env, with where exactly. */
  readonly workers: ReadonlyArray<{ readonly impl: AnyImplementation; readonly resolved: Placement.Resolved }>
  /** Serves every Worker of the Corps from the caller's runtime: calls an Env makes to Workers elsewhere come here. */
  readonly dispatcher: Dispatcher
}

/**
 * What a provider returns for the Envs it started: a Target factory per Worker
 * name, and the Corps id that handles of those Workers carry.
 *
 * @since 0.1.0
 * @category models
 */
export interface Started {
  readonly targets: ReadonlyMap<string, (key: string) => Target>
  /**
   * The Corps id the handles of these Workers carry, when it is not the
   * caller's: the id under which the hosts of these Workers resolve their
   * handles (the cluster's `cluster:<prefix>`, so a handle resolves on every
   * runner and in every caller). The caller registers these Workers under it
   * too, so a handle coming back with it resolves there as well. Absent: the
   * caller's Corps id (its Envs register under that).
   */
  readonly handleCorps?: string | undefined
}

/**
 * Starts the Envs of one kind.
 *
 * @since 0.1.0
 * @category models
 */
export interface EnvProvider {
  /**
   * Starts the Env named in `request` (one or more threads, processes,
   * runners…) and returns a Target factory per Worker name (or a
   * {@link Started}, to also name the Corps id their handles carry). The Envs
   * live until the Scope closes, which must run the finalizers inside them.
   */
  readonly start: (
    request: StartRequest
  ) => Effect.Effect<ReadonlyMap<string, (key: string) => Target> | Started, EnvStartError, Scope.Scope>
}

/**
 * The providers in reach, by Env kind. Empty by default: only `local` works
 * without one.
 *
 * @since 0.1.0
 * @category services
 */
export const EnvProviders = Context.Reference<ReadonlyMap<string, EnvProvider>>("effect-corps/EnvProviders", {
  defaultValue: () => new Map()
})

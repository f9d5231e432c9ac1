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
import { Context, Effect, Layer, type Option, type Scope } from "effect"
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
  /**
   * Workers of the Corps whose handles carry another id than the Corps' own
   * (a cluster's, say): an Env that builds handles must give them the same.
   */
  readonly handleCorps: ReadonlyMap<string, string>
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
   * Whether the Envs build Workers of the Corps themselves, with handles of
   * their own (threads and processes do): such providers start after the
   * others, so that `StartRequest.handleCorps` is complete.
   */
  readonly buildsCorps?: boolean | undefined
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
 * The context key of the provider of one Env kind. Each kind has its own key,
 * so the layers of several kinds merge like any other layers.
 *
 * @since 0.1.0
 * @category services
 */
export const providerOf = (kind: string): Context.Key<EnvProvider, EnvProvider> => {
  let key = keys.get(kind)
  if (key === undefined) {
    key = Context.Service<EnvProvider, EnvProvider>(`effect-corps/EnvProvider/${kind}`)
    keys.set(kind, key)
  }
  return key
}

const keys = new Map<string, Context.Key<EnvProvider, EnvProvider>>()

/**
 * Provides the provider of one Env kind to the Corps built below it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (kind: string, provider: EnvProvider): Layer.Layer<never> =>
  Layer.succeed(providerOf(kind), provider) as Layer.Layer<any> as Layer.Layer<never>

/**
 * The provider of `kind` in context, if any.
 *
 * @since 0.1.0
 * @category services
 */
export const find = (kind: string): Effect.Effect<Option.Option<EnvProvider>> =>
  Effect.serviceOption(providerOf(kind)) as Effect.Effect<Option.Option<EnvProvider>>

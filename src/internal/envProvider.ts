/**
 * The seam between a Corps and the Envs it places Workers in. The core knows
 * only this interface; `effect-corps/node` provides threads and processes,
 * `effect-corps/cluster` the cluster. A provider starts the Envs of one Env
 * name and returns, for each Worker placed there, how to reach an instance.
 *
 * Internal: an implementer needs the Dispatcher, Targets and codecs, which
 * are not public API (docs/decisions.md, "The EnvProvider seam is internal").
 */
import { Context, Effect, Layer, type Option, type Scope } from "effect"
import type { EnvStartError } from "../CorpsError.ts"
import type * as Env from "../Env.ts"
import type * as Placement from "../Placement.ts"
import type { AnyImplementation } from "../Worker.ts"
import type { Location } from "./create.ts"
import type { Dispatcher } from "./dispatch.ts"
import type { EventHub } from "./events.ts"
import type { Target } from "./handle.ts"
import type { EnvMonitoring } from "./monitoring.ts"
import type { Recorder } from "./recorder.ts"
import type { Supervisor } from "./supervisor.ts"

/** The settings of an Env of kind `K`, as the placement gives them. */
export type EnvOf<K extends Env.Kind> = Extract<Env.Env, { readonly kind: K }>

/** What a provider is asked to start. */
export interface StartRequest<K extends Env.Kind = Env.Kind> {
  /** The Corps' id: every Env of the Corps registers its Workers under it, so handles resolve everywhere. */
  readonly corps: string
  /** The URL of the module that exports the Corps' implementations (each Env imports it). */
  readonly module: string
  /** The Env's name in the placement, and its settings. */
  readonly envName: string
  readonly env: EnvOf<K>
  /** The Workers placed in this Env, with where exactly. */
  readonly workers: ReadonlyArray<{ readonly impl: AnyImplementation; readonly resolved: Placement.Resolved }>
  /** Serves every Worker of the Corps from the caller's runtime: calls an Env makes to Workers elsewhere come here. */
  readonly dispatcher: Dispatcher
  /**
   * Every Worker of the Corps whose handles carry another id than the Corps'
   * own (a cluster's, say), complete before any Env starts: an Env that builds
   * handles must give them the same id.
   */
  readonly handleCorps: ReadonlyMap<string, string>
  /**
   * Where every Worker of the Corps can hold instances (see
   * {@link EnvProvider.slots}), complete before any Env starts: `Worker.create`
   * inside an Env reads it. Absent: not known (create is automatic only).
   */
  readonly locations?: ReadonlyMap<string, Location> | undefined
  /** Where the provider reports what its Envs do on their own (started, crashed, restarted…). */
  readonly events: EventHub
  /** Where the Envs escalate an exhausted policy (the Corps' supervisor). */
  readonly supervisor: Supervisor
  /**
   * Monitoring is on (`Monitoring.layer`): what to tell the Envs, and the
   * caller's Recorder their figures are merged into (undefined: metrics off).
   */
  readonly monitoring?: (EnvMonitoring & { readonly recorder: Recorder | undefined }) | undefined
}

/** How to reach each Worker placed in the started Envs: a Target factory per Worker name. */
export type Targets = ReadonlyMap<string, (key: string) => Target>

/** Starts the Envs of one kind. */
export interface EnvProvider<K extends Env.Kind = Env.Kind> {
  /**
   * The Corps id that handles of Workers placed in `env` carry, when it is
   * not the caller's: the id under which the hosts of these Workers resolve
   * their handles (the cluster's `cluster:<prefix>`, so a handle resolves on
   * every runner and in every caller). Asked once the placement is resolved,
   * before any Env starts. Absent, or `undefined`: the caller's Corps id.
   */
  readonly handleCorps?:
    | ((
        request: Pick<StartRequest<K>, "envName" | "env" | "module">
      ) => Effect.Effect<string | undefined, EnvStartError>)
    | undefined
  /**
   * The slots (indexes of the Env's threads, processes…) that hold each
   * Conc Worker's instances, for a provider that routes instances by slot:
   * `Worker.create` may then put an instance in a given slot. Asked once
   * the placement is resolved, before any Env starts.
   */
  readonly slots?:
    | ((request: Pick<StartRequest<K>, "env" | "workers">) => ReadonlyMap<string, ReadonlyArray<number>>)
    | undefined
  /**
   * Starts the Env named in `request` (one or more threads, processes,
   * runners…) and returns a Target factory per Worker name. The Envs live
   * until the Scope closes, which must run the finalizers inside them.
   */
  readonly start: (request: StartRequest<K>) => Effect.Effect<Targets, EnvStartError, Scope.Scope>
}

/**
 * The context key of the provider of one Env kind. Each kind has its own key,
 * so the layers of several kinds merge like any other layers.
 */
export const providerOf = <K extends Env.Kind>(kind: K): Context.Key<EnvProvider<K>, EnvProvider<K>> => {
  let key = keys.get(kind)
  if (key === undefined) {
    key = Context.Service<EnvProvider, EnvProvider>(`effect-corps/EnvProvider/${kind}`)
    keys.set(kind, key)
  }
  // One key per kind, and `layer` only puts an EnvProvider<K> under the key of K.
  return key as unknown as Context.Key<EnvProvider<K>, EnvProvider<K>>
}

const keys = new Map<string, Context.Key<EnvProvider, EnvProvider>>()

/** Provides the provider of one Env kind to the Corps built below it. */
export const layer = <K extends Env.Kind>(kind: K, provider: EnvProvider<K>): Layer.Layer<never> =>
  Layer.succeed(providerOf(kind), provider) as Layer.Layer<any> as Layer.Layer<never>

/** The provider of `kind` in context, if any. */
export const find = <K extends Env.Kind>(kind: K): Effect.Effect<Option.Option<EnvProvider<K>>> =>
  Effect.serviceOption(providerOf(kind)) as Effect.Effect<Option.Option<EnvProvider<K>>>

/**
 * What an Env's entry says about the runtime it set up, before it imports the
 * Corps' module: which module it serves, under which name, and where to
 * report a problem that must fail the Env's start.
 */
export interface Serving {
  readonly module: string
  readonly env: string
  readonly report: (problem: string) => void
}

// On globalThis (one per thread), not in a module variable: a program may load two copies of this package.
const servingKey = Symbol.for("effect-corps/Serving")

/** Marks this thread or process as an Env serving `serving.module`. */
export const markServing = (serving: Serving): void => {
  ;(globalThis as Record<symbol, unknown>)[servingKey] = serving
}

/** The Env this thread or process serves, if it is one. */
export const serving = (): Serving | undefined =>
  (globalThis as Record<symbol, unknown>)[servingKey] as Serving | undefined

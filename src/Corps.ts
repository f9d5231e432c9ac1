/**
 * Corps: Layers that compose Workers. A Corps builds each of its Workers where
 * the placement says, provides their handles, and closes them all with its
 * scope. A Corps is itself a Worker (`Corps.make`), so it can be nested —
 * its members then stay private to it — and handed to others.
 *
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Corps } from "effect-corps"
 *
 * const App = Corps.layer([CounterLive, GreeterLive])
 * const main = program.pipe(Effect.provide(App))
 * ```
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Stream } from "effect"
import { EnvStartError, type ExtServeError, PlacementError, type WorkerOptionError } from "./CorpsError.ts"
import type { CorpsEvent } from "./CorpsEvent.ts"
import type * as Env from "./Env.ts"
import type * as ExtConnect from "./external/Connect.ts"
import type * as ExtServe from "./external/Serve.ts"
import type { Location } from "./internal/create.ts"
import * as EnvProvider from "./internal/envProvider.ts"
import { CorpsEvents, type EventHub, makeHub } from "./internal/events.ts"
import { contractOf, HandleBase } from "./internal/handle.ts"
import { MonitoringSettings, RuntimeMonitor, registryOf } from "./internal/monitoring.ts"
import { unobserved } from "./internal/observe.ts"
import { checkPassivateAfter } from "./internal/passivation.ts"
import { type CorpsRecord, recordKey } from "./internal/provided.ts"
import { CorpsRuntime } from "./internal/runtime.ts"
import { CorpsSupervisor, Supervisor } from "./internal/supervisor.ts"
import { Monitor, workersOf } from "./monitoring/Monitor.ts"
import * as Placement from "./Placement.ts"
import type * as Supervision from "./Supervision.ts"
import { type AnyImplementation, type AnyWorker, type Implementation, makeImplementation } from "./Worker.ts"

/**
 * The Workers a list of implementations provides.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Provided<Members extends ReadonlyArray<AnyImplementation>> = Members[number] extends infer I
  ? I extends Implementation<infer Self, any>
    ? Self
    : never
  : never

/**
 * What a list of implementations needs from outside.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Requirements<Members extends ReadonlyArray<AnyImplementation>> = Members[number] extends infer I
  ? I extends Implementation<any, infer R>
    ? R
    : never
  : never

/**
 * Options of a Corps.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A name for logs and errors (default `"corps"`). */
  readonly name?: string | undefined
  /**
   * Where each Worker lives. When absent: the `Placement.CurrentPlacement`
   * service if provided, else the placement in `CORPS_PLACEMENT`, else all local.
   */
  readonly placement?: Placement.Placement | undefined
  /**
   * The URL of the module that exports this Corps' implementations
   * (`import.meta.url` where they are defined). Needed only when a Worker is
   * placed outside the caller's runtime: each Env imports this module and
   * builds the Workers placed in it.
   */
  readonly module?: string | undefined
  /**
   * What this Corps does when a Corps nested in it (a `Corps.layer` built
   * under this one) fails by escalation: `"escalate"` (default) fails this
   * Corps too and passes the failure up; `"stop"` keeps this Corps serving,
   * the nested one staying failed. See docs/supervision.md. Since 0.2.0.
   */
  readonly supervision?: { readonly outcome?: Supervision.Outcome | undefined } | undefined
}

/**
 * A Corps as a Layer: builds `members` where the placement says and provides
 * a handle to each (their default instance). Members may use each other;
 * what they need beyond that is required from outside. Closing the Layer's
 * scope runs every Worker's cleanup.
 *
 * @example
 * ```ts
 * const App = Corps.layer([CounterLive, GreeterLive])
 * Effect.runPromise(program.pipe(Effect.provide(App)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Members extends ReadonlyArray<AnyImplementation>>(
  members: Members,
  options?: Options
): Layer.Layer<
  Provided<Members> | Events,
  PlacementError | EnvStartError | WorkerOptionError,
  Exclude<Requirements<Members>, Provided<Members>>
> =>
  Layer.effectContext(
    Effect.gen(function* () {
      for (const impl of allMembers(members)) {
        if (impl.kind === "conc") yield* checkPassivateAfter(impl.worker.key, impl.conc.passivateAfter)
      }
      // A placement written in code is checked like one read from a file.
      const placement =
        options?.placement === undefined ? yield* currentPlacement : yield* Placement.decode(options.placement)
      const resolved = yield* Placement.resolve(placement, allWorkerNames(members))
      const envs = yield* planEnvs(members, resolved, options?.module, placement)
      const handleCorps = new Map<string, string>()
      for (const { envName, env, impls, provider } of envs) {
        // Which id the handles of these Workers carry is settled before any Env starts, so every Env learns it.
        const id =
          provider.handleCorps === undefined
            ? undefined
            : yield* provider.handleCorps({ envName, env, module: options!.module! })
        if (id !== undefined) for (const impl of impls) handleCorps.set(impl.worker.key, id)
      }
      const scope = yield* Effect.scope
      const outer = yield* Effect.context<never>()
      // A nested Corps reports to the hub of the Corps around it: one stream shows the whole tree.
      const around = Context.getOption(outer, Events)
      const events = around._tag === "Some" ? around.value : yield* makeHub
      const name = options?.name ?? "corps"
      // Monitoring is decided here, once: without Monitoring.layer no Target is wrapped and nothing is recorded.
      const settings = Context.getOption(outer, MonitoringSettings)
      const monitor =
        settings._tag === "None"
          ? undefined
          : new RuntimeMonitor({
              settings: settings.value,
              corpsName: name,
              here: "local",
              envOf: (worker) => resolved.get(worker)?.envName ?? "local",
              registry: registryOf(outer),
              // Handlers in the caller's runtime: annotated when tracing is on (the FastPath's metrics stay lean).
              annotateLogs: settings.value.tracing !== undefined
            })
      const locations = locationsOf(members, resolved, envs)
      const corps = new CorpsRuntime({ name, resolved, scope, handleCorps, events, monitor, locations })
      // A nested Corps escalates to the supervisor of the Corps around it.
      const parent = Context.getOption(outer, CorpsSupervisor)
      const supervisor = new Supervisor(
        corps.id,
        parent._tag === "Some" ? parent.value : undefined,
        options?.supervision?.outcome ?? "escalate"
      )
      // A Monitor in context (the dashboard's) learns of this Corps before its Envs start, so it sees their first events.
      const dashboard = Context.getOption(outer, Monitor)
      if (dashboard._tag === "Some") {
        yield* dashboard.value.addCorps(
          {
            id: corps.id,
            name: corps.name,
            parent: parent._tag === "Some" ? parent.value.corps : undefined,
            workers: workersOf(members, resolved)
          },
          events
        )
      }
      if (envs.length > 0) yield* startEnvs(corps, envs, options!.module!, outer, events, supervisor)
      // The record lets a lookup of a Worker the Corps lacks name the Corps (WorkerNotProvided), its members' builders included.
      const record = recordKey(corps.id)
      const info = corpsRecord(corps.name, members)
      const context = yield* corps.build(members, Context.add(outer, record, info))
      corps.publish()
      return Context.add(
        Context.add(Context.add(Context.pick(...members.map((m) => m.worker))(context), record, info), Events, events),
        // Not in the Layer's type: only a Corps built below this one reads it.
        CorpsSupervisor,
        supervisor
      )
    })
  ) as any

/**
 * The event hub of the Corps tree in context; every `Corps.layer` provides
 * it (a nested Corps shares the hub of the Corps around it).
 *
 * @since 0.2.0
 * @category services
 */
export const Events: typeof CorpsEvents = CorpsEvents

/**
 * @since 0.2.0
 * @category services
 */
export type Events = CorpsEvents

/**
 * What the Corps in context reports about itself from now on: Envs started,
 * crashed, restarted or given up on, calls sent again or quarantined,
 * instances rebuilt or passivated, in its thread and process Envs too (see
 * `CorpsEvent`). Each event is also logged once,
 * annotated with its Worker and Env. A subscriber that falls behind by more
 * than 4,096 events loses the oldest; nothing waits for subscribers.
 *
 * @example
 * ```ts
 * const watch = Corps.events.pipe(Stream.runForEach((event) => Console.log(event._tag)))
 * ```
 *
 * @since 0.2.0
 * @category events
 */
export const events: Stream.Stream<CorpsEvent, never, Events> = Stream.unwrap(
  Effect.map(Effect.service(CorpsEvents), (hub) => hub.stream)
)

/**
 * Where each Worker's instances can live (`Worker.create` reads it): known
 * before any Env starts, so every Env of the Corps learns the whole map.
 * A provider that routes instances by slot says which slots; a cluster has
 * none; a Worker in the caller's runtime has one.
 */
const locationsOf = (
  members: ReadonlyArray<AnyImplementation>,
  resolved: ReadonlyMap<string, Placement.Resolved>,
  envs: ReadonlyArray<PlannedEnv>
): ReadonlyMap<string, Location> => {
  const locations = new Map<string, Location>()
  for (const impl of members) {
    const where = resolved.get(impl.worker.key)
    if (where?.env.kind === "local") locations.set(impl.worker.key, { env: where.envName, kind: "local", slots: [0] })
  }
  for (const { envName, env, impls, provider } of envs) {
    const slots = provider.slots?.({
      env,
      workers: impls.map((impl) => ({ impl, resolved: resolved.get(impl.worker.key)! }))
    })
    for (const impl of impls) {
      locations.set(impl.worker.key, { env: envName, kind: env.kind, slots: slots?.get(impl.worker.key) ?? [] })
    }
  }
  return locations
}

/** The Workers placed in one Env name, and the provider of its kind. */
interface PlannedEnv {
  readonly envName: string
  readonly env: Env.Env
  readonly impls: ReadonlyArray<AnyImplementation>
  readonly provider: EnvProvider.EnvProvider
}

/**
 * Groups the Workers placed outside the caller's runtime by Env name, finds
 * the provider of each, and refuses what cannot start: all before any Env
 * starts, and synchronously, so that a module re-running its program inside
 * one of its own Envs is stopped while that Env is still importing it.
 */
const planEnvs = (
  members: ReadonlyArray<AnyImplementation>,
  resolved: ReadonlyMap<string, Placement.Resolved>,
  module: string | undefined,
  placement: Placement.Placement
) =>
  Effect.gen(function* () {
    // Private members go where their Corps goes; placing one explicitly elsewhere is a mistake.
    for (const impl of members) {
      for (const inner of allMembers(impl.members)) {
        const explicit = placement.workers?.[inner.worker.key]
        const where = resolved.get(inner.worker.key)
        if (explicit !== undefined && where !== undefined && where.env.kind !== "local") {
          return yield* new PlacementError({
            key: `workers.${inner.worker.key}`,
            reason: `a private member lives with its Corps (${impl.worker.key}); place that instead`
          })
        }
      }
    }
    const groups = new Map<string, Array<AnyImplementation>>()
    for (const impl of members) {
      const where = resolved.get(impl.worker.key)!
      if (where.env.kind === "local") continue
      const group = groups.get(where.envName) ?? []
      group.push(impl)
      groups.set(where.envName, group)
    }
    const planned: Array<PlannedEnv> = []
    for (const [envName, impls] of groups) {
      const env = resolved.get(impls[0]!.worker.key)!.env
      const found = yield* EnvProvider.find(env.kind)
      if (found._tag === "None") {
        return yield* new PlacementError({
          key: placement.envs?.[envName] !== undefined ? `envs.${envName}` : `workers.${impls[0]!.worker.key}`,
          reason: noProvider(env.kind)
        })
      }
      planned.push({ envName, env, impls, provider: found.value })
    }
    if (planned.length === 0) return planned
    if (module === undefined) {
      return yield* new PlacementError({
        key: "module",
        reason: `Workers placed in Env "${planned[0]!.envName}" need the module that defines them: pass { module: import.meta.url } to Corps.layer`
      })
    }
    // An Env imports the module to build its Workers; a module that builds this Corps again when imported
    // (no `import.meta.main` guard) would start Envs of its own, each importing it again, without end.
    const env = EnvProvider.serving()
    if (env !== undefined && env.module === module) {
      const reason = `the module runs its program again when an Env imports it (here in Env ${env.env}), which would start Envs without end: guard the program with \`if (import.meta.main) { … }\`, or export the implementations from a module of their own`
      env.report(reason)
      return yield* new EnvStartError({ env: env.env, module, reason })
    }
    return planned
  })

/**
 * Starts the Envs that Workers are placed in, through the provider of each
 * kind, and records how to reach each Worker placed there.
 */
const startEnvs = (
  corps: CorpsRuntime,
  envs: ReadonlyArray<PlannedEnv>,
  module: string,
  outer: Context.Context<never>,
  events: EventHub,
  supervisor: Supervisor
) =>
  Effect.gen(function* () {
    serveOuterWorkers(corps, outer)
    for (const { envName, env, impls, provider } of envs) {
      const targets = yield* provider.start({
        corps: corps.id,
        module,
        envName,
        env,
        workers: impls.map((impl) => ({ impl, resolved: corps.resolved.get(impl.worker.key)! })),
        dispatcher: corps.dispatcher,
        handleCorps: corps.handleCorps,
        locations: corps.locations,
        events,
        supervisor,
        monitoring:
          corps.monitor === undefined
            ? undefined
            : {
                settings: corps.monitor.settings,
                corpsName: corps.name,
                envOf: Object.fromEntries([...corps.resolved].map(([worker, where]) => [worker, where.envName])),
                recorder: corps.monitor.recorder
              }
      })
      for (const [worker, target] of targets) corps.remote.set(worker, target)
    }
  })

const noProvider = (kind: string) =>
  `no provider for Env kind "${kind}" is in context: provide its layer (threads and processes: NodeEnv.layer from "effect-corps/node"; hosts: HostEnv.layer from "effect-corps/host"; the cluster: ClusterEnv.layer() from "effect-corps/cluster")`

/**
 * Workers of enclosing Corps (a Worker built in an Env may use them, as it
 * would locally): calls an Env makes to them come to this Corps' dispatcher,
 * which forwards them to the handle in context.
 *
 * They are read from the handles in context, not by importing the module:
 * the module is often the program's own entry, still evaluating (a top-level
 * `await` on this very Corps), and importing it here would wait for itself.
 */
const serveOuterWorkers = (corps: CorpsRuntime, outer: Context.Context<never>): void => {
  for (const value of outer.mapUnsafe.values()) {
    if (!(value instanceof HandleBase) || corps.resolved.has(value.worker)) continue
    const worker = contractOf(value)
    // The Target beneath monitoring: the Env that makes such a call has counted it already.
    if (worker !== undefined)
      corps.served.set(value.worker, { worker, target: (key) => unobserved(value.instance(key).target) })
  }
}

const corpsRecord = (name: string, members: ReadonlyArray<AnyImplementation>): CorpsRecord => {
  const privateTo = new Map<string, Array<string>>()
  const visit = (owner: AnyImplementation) => {
    for (const inner of owner.members) {
      const owners = privateTo.get(inner.worker.key) ?? []
      owners.push(owner.worker.key)
      privateTo.set(inner.worker.key, owners)
      visit(inner)
    }
  }
  for (const impl of members) visit(impl)
  return { name, members: members.map((m) => m.worker.key), privateTo }
}

const allMembers = (members: ReadonlyArray<AnyImplementation>): Array<AnyImplementation> =>
  members.flatMap((m) => [m, ...allMembers(m.members)])

/**
 * Makes a Corps that is itself a Worker: `implementation` serves the Corps'
 * own contract and may use `members`, which are private to it — nothing
 * outside can reach them except through handles the Corps hands out.
 *
 * @example
 * ```ts
 * const ShopLive = Corps.make(Shop.func(Effect.gen(function* () {
 *   const stock = yield* Stock
 *   return { order: (o) => stock.take(o) }
 * })), { members: [StockLive] })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Self, R, const Members extends ReadonlyArray<AnyImplementation>>(
  implementation: Implementation<Self, R>,
  options: { readonly members: Members }
): Implementation<Self, Exclude<R | Requirements<Members>, Provided<Members>>> =>
  makeImplementation(implementation.worker, implementation.kind, implementation.build, {
    conc: implementation.conc,
    func: implementation.func,
    members: [...implementation.members, ...options.members]
  }) as any

const currentPlacement: Effect.Effect<Placement.Placement, PlacementError> = Effect.flatMap(
  Effect.serviceOption(Placement.CurrentPlacement),
  // Checked again: the service may have been provided without Placement.layer's check.
  (option) => (option._tag === "Some" ? Placement.decode(option.value) : Placement.fromConfig)
)

/** Every Worker name, nested members included: a placement may name any of them. */
const allWorkerNames = (members: ReadonlyArray<AnyImplementation>): Array<string> =>
  members.flatMap((m) => [m.worker.key, ...allWorkerNames(m.members)])

/**
 * Serves Workers of a running Corps at an address, for `Corps.connect` in
 * other programs and for `corps call` (ExtCorps, docs/external.md). Every
 * caller must prove the shared secret; with `tls` the connection is TLS.
 * Calls, typed errors, streams, interruption and handles cross in both
 * directions. Provides {@link ServedAt} (the address bound, for port 0).
 *
 * @example
 * ```ts
 * const Served = Corps.serve([Greeter], { listen: "0.0.0.0:7500", secretFile: "/run/secrets/corps" })
 * const App = Served.pipe(Layer.provide(Corps.layer([GreeterLive])))
 * ```
 *
 * @since 0.4.0
 * @category ExtCorps
 */
export const serve = <const Workers extends ReadonlyArray<Contract>>(
  workers: Workers,
  options: ExtServe.ServeOptions
): Layer.Layer<ExtServe.ServedAt, ExtServeError, ServedIds<Workers[number]>> =>
  Layer.unwrap(
    Effect.map(Effect.promise(loadServe), (module) =>
      module.layer(workers as unknown as ReadonlyArray<AnyWorker>, options)
    )
  )

/**
 * Typed handles to Workers another program serves with {@link serve}: the
 * contracts are the same `Worker.Service` classes (their implementations are
 * not needed here). The connection is checked when the Layer is built:
 * `WorkerNotServed` for a contract not served there, `ContractMismatch`
 * naming the methods whose Schemas differ. A lost connection is dialed again
 * with backoff; meanwhile calls end with `CallLost`, and calls of
 * `idempotent` methods are sent again.
 *
 * @example
 * ```ts
 * const Remote = Corps.connect([Greeter], { address: "10.0.0.2:7500", secretFile: "/run/secrets/corps" })
 * const program = Effect.flatMap(Greeter.asEffect(), (g) => g.greet({ name: "Ada" }))
 * ```
 *
 * @since 0.4.0
 * @category ExtCorps
 */
export const connect = <const Contracts extends ReadonlyArray<Contract>>(
  contracts: Contracts,
  options: ExtConnect.ConnectOptions
): Layer.Layer<ServedIds<Contracts[number]>, ExtConnect.ConnectError> =>
  Layer.unwrap(
    Effect.map(Effect.promise(loadConnect), (module) =>
      module.layer(contracts as unknown as ReadonlyArray<AnyWorker>, options)
    )
  )

/**
 * Where a {@link serve} Layer listens.
 *
 * @since 0.4.0
 * @category ExtCorps
 */
export const ServedAt: Effect.Effect<{ readonly address: string }, never, ExtServe.ServedAt> = Effect.suspend(() =>
  Effect.flatMap(
    Effect.promise(loadServe),
    (module) => module.ServedAt as unknown as Effect.Effect<{ readonly address: string }, never, ExtServe.ServedAt>
  )
) as any

/**
 * A Worker contract (a class made by `Worker.Service`), as `serve` and
 * `connect` take it.
 *
 * @since 0.4.0
 * @category type-level
 */
export type Contract = Context.Key<any, any> & { readonly key: string; readonly methods: object }

/**
 * The ids of the services a list of Worker classes are keys of.
 *
 * @since 0.4.0
 * @category type-level
 */
export type ServedIds<W> = W extends Context.Key<infer I, any> ? I : never

// Loaded only when used: a program that serves and connects nothing never loads node:net.
const loadServe = () => import("./external/Serve.ts")
const loadConnect = () => import("./external/Connect.ts")

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
import { Context, Effect, type Exit, Layer, Scope } from "effect"
import type { PlacementError } from "./CorpsError.ts"
import { ConcWorker } from "./internal/conc.ts"
import { Dispatcher, remoteTarget, type Served } from "./internal/dispatch.ts"
import { LocalFunc } from "./internal/func.ts"
import type { HandleBase, Target, WorkerEntry } from "./internal/handle.ts"
import { register } from "./internal/registry.ts"
import * as Placement from "./Placement.ts"
import type { AnyImplementation, Implementation } from "./Worker.ts"
import { makeImplementation } from "./Worker.ts"

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
): Layer.Layer<Provided<Members>, PlacementError, Exclude<Requirements<Members>, Provided<Members>>> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const placement = options?.placement ?? (yield* currentPlacement)
      const resolved = yield* Placement.resolve(placement, allWorkerNames(members))
      const scope = yield* Effect.scope
      const outer = yield* Effect.context<never>()
      const corps = new CorpsRuntime(options?.name ?? "corps", resolved, scope)
      const context = yield* corps.build(members, outer)
      corps.publish()
      return Context.pick(...members.map((m) => m.worker))(context)
    })
  ) as any

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
  (option) => (option._tag === "Some" ? Effect.succeed(option.value) : Placement.fromConfig)
)

/** Every Worker name, nested members included: a placement may name any of them. */
const allWorkerNames = (members: ReadonlyArray<AnyImplementation>): Array<string> =>
  members.flatMap((m) => [m.worker.key, ...allWorkerNames(m.members)])

/** One built Corps: its Workers' entries, and the closing of all of them. */
class CorpsRuntime {
  readonly id: string
  readonly entries = new Map<string, WorkerEntry>()
  readonly served = new Map<string, Served>()
  private readonly funcs = new Map<string, LocalFunc>()
  private readonly closers: Array<(exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>> = []
  readonly name: string
  readonly resolved: ReadonlyMap<string, Placement.Resolved>
  readonly scope: Scope.Scope

  constructor(name: string, resolved: ReadonlyMap<string, Placement.Resolved>, scope: Scope.Scope) {
    this.name = name
    this.id = `${name}-${crypto.randomUUID()}`
    this.resolved = resolved
    this.scope = scope
  }

  /**
   * Creates the handles of `members` (and, recursively, of their private
   * members), then builds the Funcs. Concs are built per key on first use.
   * Returns `outer` with the members' handles added.
   */
  build(
    members: ReadonlyArray<AnyImplementation>,
    outer: Context.Context<never>
  ): Effect.Effect<Context.Context<never>> {
    const runtime = this
    return Effect.gen(function* () {
      // Handles first: members may use each other, in any order.
      const memberContexts = new Map<AnyImplementation, Context.Context<never>>()
      let context = outer
      for (const impl of members) {
        const entry = runtime.entryFor(impl, () => memberContexts.get(impl)!)
        const handle: HandleBase = new entry.HandleClass(entry, "default", entry.target("default"))
        context = Context.add(context, impl.worker, handle as any)
      }
      // A member sees its siblings, and its own private members.
      for (const impl of members) {
        if (impl.members.length === 0) {
          memberContexts.set(impl, context)
        } else {
          // Private members live in a Corps of their own: their names may repeat elsewhere.
          const inner = new CorpsRuntime(`${runtime.name}/${impl.worker.key}`, runtime.resolved, runtime.scope)
          memberContexts.set(impl, yield* inner.build(impl.members, context))
          inner.publish()
        }
      }
      for (const impl of members) {
        if (impl.kind === "func") yield* runtime.buildFunc(impl, memberContexts.get(impl)!)
      }
      return context
    })
  }

  /** The entry of one Worker: how to reach any of its instances. */
  private entryFor(impl: AnyImplementation, contextOf: () => Context.Context<never>): WorkerEntry {
    const worker = impl.worker
    const resolved = this.resolved.get(worker.key)!
    let local: (key: string) => Target
    if (impl.kind === "conc") {
      const conc = new ConcWorker({
        worker: worker.key,
        corps: this.id,
        closed: false,
        mailbox: { capacity: impl.conc.capacity ?? 1024, onFull: impl.conc.onFull ?? "suspend" },
        concurrent: new Set(impl.conc.concurrent ?? []),
        build: (key, scope) =>
          Effect.provideContext(impl.build(key), Context.add(contextOf(), Scope.Scope, scope)) as any
      })
      this.closers.push((exit) => conc.close(exit))
      local = (key) => conc.instance(key)
    } else {
      const func = new LocalFunc(worker.key, this.id, impl.func.concurrency)
      this.funcs.set(worker.key, func)
      this.closers.push(() => Effect.sync(() => func.close()))
      local = () => func
    }
    this.served.set(worker.key, { worker, target: local })
    const checked = resolved.env.kind === "local" && resolved.env.checkSerialization === true
    const dispatcher = checked ? new Dispatcher(this.id, this.served) : undefined
    const entry: WorkerEntry = {
      corps: this.id,
      worker: worker.key,
      HandleClass: worker.HandleClass,
      target: dispatcher
        ? (key) => {
            const remote = remoteTarget(worker, key, (request) => dispatcher.dispatch(request))
            // Streams are not checked element by element yet: they take the FastPath.
            return { call: remote.call, stream: (method, payload) => local(key).stream(method, payload) }
          }
        : local
    }
    this.entries.set(worker.key, entry)
    return entry
  }

  private buildFunc(impl: AnyImplementation, context: Context.Context<never>): Effect.Effect<void> {
    // Its own scope, closed in the Corps' shutdown order rather than after every Worker is closed.
    const scope = Scope.forkUnsafe(this.scope)
    this.closers.push((exit) => Scope.close(scope, exit))
    return Effect.map(
      Effect.provideContext(impl.build("default"), Context.add(context, Scope.Scope, scope)) as Effect.Effect<any>,
      (handlers) => this.funcs.get(impl.worker.key)!.init(handlers)
    )
  }

  /** Makes the Corps reachable by handles in this runtime, until its scope closes. */
  publish(): void {
    const unregister = register(this.id, this.entries)
    Scope.addFinalizerExit(this.scope, (exit) =>
      Effect.andThen(
        Effect.sync(unregister),
        // Last built, first closed: a Worker's cleanup may still call the Workers it was built after.
        Effect.forEach(this.closers.toReversed(), (close) => close(exit), { discard: true })
      )
    ).pipe(Effect.runSync)
  }
}

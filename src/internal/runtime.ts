/**
 * One built Corps in one runtime: the entries of its Workers (how to reach
 * any instance), the Targets it serves, and the closing of all of them.
 *
 * The caller's runtime builds the Workers placed locally and reaches the
 * others through their Env's Targets; an Env builds the Workers placed in it
 * and reaches the others back through the caller. Both use this class, with
 * the same Corps id, so a handle means the same instance everywhere.
 */
import { Context, Effect, type Exit, Scope } from "effect"
import type { CorpsEvent } from "../CorpsEvent.ts"
import type * as Placement from "../Placement.ts"
import type { AnyImplementation } from "../Worker.ts"
import { ConcWorker } from "./conc.ts"
import type { Location } from "./create.ts"
import { Dispatcher, remoteTarget, type Served } from "./dispatch.ts"
import { type EventHub, logEvent } from "./events.ts"
import { LocalFunc } from "./func.ts"
import type { HandleBase, Target, WorkerEntry } from "./handle.ts"
import { messageOf } from "./message.ts"
import type { RuntimeMonitor } from "./monitoring.ts"
import { passivateAfterMillis, sweeper } from "./passivation.ts"
import { register } from "./registry.ts"

/** How to build a runtime. */
export interface RuntimeOptions {
  readonly name: string
  /** The Corps id; a fresh one when absent. An Env passes its caller's. */
  readonly id?: string | undefined
  readonly resolved: ReadonlyMap<string, Placement.Resolved>
  readonly scope: Scope.Scope
  /** Workers not built here, and how to reach them. Filled in before `build`. */
  readonly remote?: Map<string, (key: string) => Target> | undefined
  /**
   * Concs built here whose instances are split with other Envs: for a key
   * that lives elsewhere, the Target to reach it; `undefined` for keys that
   * live here. `local` is the key's instance here, for a partition that
   * decides per call (a scaling Env's directory).
   */
  readonly partition?: Map<string, (key: string, local: () => Target) => Target | undefined> | undefined
  /**
   * Workers whose handles carry another Corps id than this one (Workers on a
   * cluster carry the cluster's, which its runners resolve), by Worker name.
   * Known once the placement is resolved: `publish` registers these Workers
   * under that id too.
   */
  readonly handleCorps?: ReadonlyMap<string, string> | undefined
  /** Where the runtime reports what it does on its own (restarts, re-deliveries…); absent in Envs. */
  readonly events?: EventHub | undefined
  /**
   * Where an Env's runtime sends its events instead (to the caller's hub,
   * over the link: src/node/envMain.ts); `env` is the Env's `<name>#<index>`.
   */
  readonly forward?: { readonly env: () => string; readonly send: (event: CorpsEvent) => void } | undefined
  /**
   * The Concs built here may be drained (an Env of a pool): they count
   * concurrent calls and open streams, so passivation never closes an
   * instance under one.
   */
  readonly drainable?: boolean | undefined
  /** Monitoring (`Monitoring.layer`); absent: handles call their Targets directly. */
  readonly monitor?: RuntimeMonitor | undefined
  /** Where each Worker's instances can live, by Worker name (`Worker.create` reads it from the entries). */
  readonly locations?: ReadonlyMap<string, Location> | undefined
}

/** One built Corps: its Workers' entries, and the closing of all of them. */
export class CorpsRuntime {
  readonly id: string
  readonly entries = new Map<string, WorkerEntry>()
  readonly served = new Map<string, Served>()
  private readonly funcs = new Map<string, LocalFunc>()
  private readonly closers: Array<(exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>> = []
  readonly name: string
  readonly resolved: ReadonlyMap<string, Placement.Resolved>
  readonly scope: Scope.Scope

  /** Workers not built here, and how to reach them. */
  readonly remote: Map<string, (key: string) => Target>
  /** Workers whose handles carry another Corps id than this one (see {@link RuntimeOptions.handleCorps}). */
  readonly handleCorps: ReadonlyMap<string, string>
  /** The Corps tree's event hub (`Corps.events`); undefined inside an Env. */
  readonly events: EventHub | undefined
  private readonly forward: RuntimeOptions["forward"]
  private readonly drainable: boolean
  /** The Conc Workers built here, by name (draining passivates their instances). */
  readonly concs = new Map<string, ConcWorker>()
  /** The passivation sweepers of Concs with `passivateAfter`, forked in the scope once built. */
  private readonly sweepers: Array<Effect.Effect<never>> = []
  /** Where each Worker's instances can live (see {@link RuntimeOptions.locations}). */
  readonly locations: ReadonlyMap<string, Location>
  private readonly partition: Map<string, (key: string, local: () => Target) => Target | undefined>
  /** Serves every Worker of this runtime, built here or not (Envs call in through it). */
  readonly dispatcher: Dispatcher
  readonly monitor: RuntimeMonitor | undefined

  constructor(options: RuntimeOptions) {
    this.name = options.name
    this.id = options.id ?? `${options.name}-${crypto.randomUUID()}`
    this.resolved = options.resolved
    this.scope = options.scope
    this.remote = options.remote ?? new Map()
    this.partition = options.partition ?? new Map()
    this.handleCorps = options.handleCorps ?? new Map()
    this.events = options.events
    this.forward = options.forward
    this.drainable = options.drainable ?? false
    this.locations = options.locations ?? new Map()
    this.dispatcher = new Dispatcher(this.id, this.served)
    this.monitor = options.monitor
    // Without client spans, a call forwarded from one Env to another is one span too: the one where it runs.
    if (options.monitor?.settings.tracing?.clientSpans === false) this.dispatcher.forwardSpans = false
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
        if (runtime.remote.has(impl.worker.key)) continue
        if (impl.members.length === 0) {
          memberContexts.set(impl, context)
        } else {
          // Private members live in a Corps of their own: their names may repeat elsewhere.
          const inner = new CorpsRuntime({
            name: `${runtime.name}/${impl.worker.key}`,
            resolved: runtime.resolved,
            scope: runtime.scope,
            events: runtime.events,
            forward: runtime.forward,
            drainable: runtime.drainable,
            monitor: runtime.monitor?.nested(`${runtime.name}/${impl.worker.key}`),
            locations: runtime.locations
          })
          memberContexts.set(impl, yield* inner.build(impl.members, context))
          inner.publish()
        }
      }
      for (const impl of members) {
        if (impl.kind === "func" && !runtime.remote.has(impl.worker.key)) {
          yield* runtime.buildFunc(impl, memberContexts.get(impl)!)
        }
      }
      // In the Corps' scope: closing the Corps stops them (and still closes every live instance).
      for (const sweep of runtime.sweepers.splice(0)) yield* Effect.forkIn(sweep, runtime.scope)
      return context
    })
  }

  /** The entry of one Worker: how to reach any of its instances. */
  private entryFor(impl: AnyImplementation, contextOf: () => Context.Context<never>): WorkerEntry {
    const worker = impl.worker
    const resolved = this.resolved.get(worker.key)
    const elsewhere = this.remote.get(worker.key)
    let local: (key: string) => Target
    if (elsewhere !== undefined) {
      local = elsewhere
    } else if (impl.kind === "conc") {
      // Checked by Corps.layer (WorkerOptionError); an Env reads the same module, so a bad value cannot get here.
      const passivateAfter = passivateAfterMillis(impl.conc.passivateAfter)
      const passivating = typeof passivateAfter === "number"
      const conc = new ConcWorker({
        worker: worker.key,
        corps: this.id,
        closed: false,
        mailbox: { capacity: impl.conc.capacity ?? 1024, onFull: impl.conc.onFull ?? "suspend" },
        concurrent: new Set(impl.conc.concurrent ?? []),
        onRestart: impl.conc.onDefect === "restart" ? this.reportRestart(worker.key) : undefined,
        tracked: passivating || this.drainable,
        onPassivate: this.reportPassivation(worker.key),
        // The builder sees the Corps' context and its instance's Scope — not its first caller's context
        // (so no merge with it: one context copy per instance).
        build: (key, scope) =>
          Effect.updateContext(impl.build(key), () => Context.add(contextOf(), Scope.Scope, scope)) as any
      })
      this.closers.push((exit) => conc.close(exit))
      this.concs.set(worker.key, conc)
      if (passivating) this.sweepers.push(sweeper(conc, passivateAfter))
      this.monitor?.recorder?.addWorker({
        worker: worker.key,
        env: this.monitor.envOf(worker.key),
        read: () => conc.gauges()
      })
      const elsewhereFor = this.partition.get(worker.key)
      local =
        elsewhereFor === undefined
          ? (key) => conc.instance(key)
          : (key) => elsewhereFor(key, () => conc.instance(key)) ?? conc.instance(key)
    } else {
      const func = new LocalFunc(worker.key, this.id, impl.func.concurrency)
      this.funcs.set(worker.key, func)
      this.closers.push(() => Effect.sync(() => func.close()))
      this.monitor?.recorder?.addWorker({
        worker: worker.key,
        env: this.monitor.envOf(worker.key),
        read: () => ({ instances: func.closed ? 0 : 1, mailbox: 0 })
      })
      local = () => func
    }
    this.served.set(worker.key, { worker, target: local })
    const checked =
      elsewhere === undefined && resolved?.env.kind === "local" && resolved.env.checkSerialization === true
    const dispatcher = checked ? this.dispatcher : undefined
    const direct: (key: string) => Target = dispatcher
      ? (key) => remoteTarget(worker, key, (request) => dispatcher.dispatch(request))
      : local
    const entry: WorkerEntry = {
      corps: this.handleCorps.get(worker.key) ?? this.id,
      worker: worker.key,
      HandleClass: worker.HandleClass,
      location: this.locations.get(worker.key),
      // Decided once per Worker: with monitoring off, handles call the Targets themselves.
      target: this.monitor === undefined ? direct : this.monitor.observe(worker, direct)
    }
    this.entries.set(worker.key, entry)
    return entry
  }

  /**
   * What a Conc under `onDefect: "restart"` reports when an instance is
   * retired: an `InstanceRestarted` event (see {@link emit}).
   */
  private reportRestart(worker: string): (key: string, defect: unknown) => Effect.Effect<void> {
    return (key, defect) =>
      this.emit(() => ({
        _tag: "InstanceRestarted",
        corps: this.id,
        at: Date.now(),
        worker,
        key,
        detail: `a handler died (${messageOf(defect)}); finalizers ran, the next call builds a fresh instance`
      }))
  }

  /** What a Conc reports when an instance was passivated: an `InstancePassivated` event (see {@link emit}). */
  private reportPassivation(worker: string): (key: string, idleMillis: number | undefined) => Effect.Effect<void> {
    return (key, idleMillis) =>
      this.emit(() => ({
        _tag: "InstancePassivated",
        corps: this.id,
        at: Date.now(),
        worker,
        key,
        ...(idleMillis === undefined ? {} : { idleMillis })
      }))
  }

  /**
   * Reports an event of `worker`: to the Corps tree's hub where there is one
   * (it logs it too); from an Env, to the caller's hub over the link, with
   * the Env's name (fire and forget: the caller logs it); else as a log line.
   */
  private emit(make: () => CorpsEvent): Effect.Effect<void> {
    return Effect.suspend(() => {
      const event = make()
      if (this.events !== undefined) return this.events.emit(event)
      if (this.forward !== undefined) {
        const forward = this.forward
        return Effect.sync(() => forward.send({ ...event, env: forward.env() } as CorpsEvent))
      }
      return logEvent(event)
    })
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

  /**
   * Makes the Corps reachable by handles in this runtime, until its scope
   * closes: under its own id, and the Workers whose handles carry another id
   * under that one too (so such a handle resolves here when it comes back).
   */
  publish(): void {
    const unregister = [register(this.id, this.entries)]
    const byCorps = new Map<string, Map<string, WorkerEntry>>()
    for (const [worker, corps] of this.handleCorps) {
      const entry = this.entries.get(worker)
      if (entry === undefined) continue
      const group = byCorps.get(corps) ?? new Map<string, WorkerEntry>()
      group.set(worker, entry)
      byCorps.set(corps, group)
    }
    for (const [corps, entries] of byCorps) unregister.push(register(corps, entries))
    const recorder = this.monitor?.recorder
    if (recorder !== undefined) unregister.push(() => recorder.close())
    Scope.addFinalizerExit(this.scope, (exit) =>
      Effect.andThen(
        Effect.sync(() => {
          for (const undo of unregister) undo()
        }),
        // Last built, first closed: a Worker's cleanup may still call the Workers it was built after.
        Effect.forEach(this.closers.toReversed(), (close) => close(exit), { discard: true })
      )
    ).pipe(Effect.runSync)
  }
}

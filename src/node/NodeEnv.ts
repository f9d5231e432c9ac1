/**
 * Thread and process Envs: every core of a host, by placement alone.
 *
 * ```ts
 * import { NodeEnv } from "effect-corps/node"
 *
 * const App = Corps.layer([HasherLive], {
 *   module: import.meta.url,
 *   placement: { workers: { Hasher: { env: "thread" } } }
 * }).pipe(Layer.provide(NodeEnv.layer))
 * ```
 *
 * Each Env is a worker thread or a child process running `envMain.ts`, which
 * imports the Corps' module and builds the Workers placed in it. Calls travel
 * over the batched transport (src/node/transport); the Envs of one name form
 * a pool (src/node/EnvPool.ts). Funcs go to the
 * least-loaded replica, Conc instances live in the Env their key hashes to.
 * An Env whose `count` is a range (or `"auto"`) scales with its load
 * (src/node/scaler.ts, docs/scaling.md): its Funcs spread over the Envs in
 * service, and its Conc keys are placed by a directory (src/node/directory.ts)
 * so that an instance stays where it lives while the Env is resized.
 * A crashed Env is started again for later calls; its calls in flight are
 * sent again when their method is `idempotent` (src/node/redelivery.ts) and
 * fail with `CallLost` otherwise.
 *
 * @since 0.1.0
 */
import { availableParallelism } from "node:os"
import { Effect, Layer } from "effect"
import { CorpsClosed, EnvStartError } from "../CorpsError.ts"
import * as Env from "../Env.ts"
import { type OnFailure, type Register, remoteTarget } from "../internal/dispatch.ts"
import {
  type EnvProvider,
  layer as EnvProviderLayer,
  type StartRequest,
  type Targets
} from "../internal/envProvider.ts"
import type { Target } from "../internal/handle.ts"
import type * as Wire from "../internal/wire.ts"
import { Monitor as DashboardMonitor } from "../monitoring/Monitor.ts"
import * as Scaling from "../Scaling.ts"
import { Directory } from "./directory.ts"
import * as EnvPool from "./EnvPool.ts"
import type { EnvInit } from "./envInit.ts"
import * as Monitor from "./monitor.ts"
import * as Redelivery from "./redelivery.ts"
import { hostFor, hostsOf } from "./routing.ts"
import * as Scaler from "./scaler.ts"
import type { Client } from "./transport/Client.ts"

/** The hosts of one Worker. A Corps with private members is one unit: replicas would each hold their own members' state. */
const hostsFor = (worker: StartRequest["workers"][number], count: number): ReadonlyArray<number> =>
  worker.impl.members.length > 0 ? [0] : hostsOf(worker.resolved, count)

/**
 * The hosts of one Worker in a scaling Env: fixed slots below `min`, which
 * are never drained (`pinned`, `replicas`, a Corps with private members), or
 * `"dynamic"`: every slot in service at the time of the call (a Func picks
 * among them, a Conc key is placed by the directory).
 */
const scalingHostsFor = (worker: StartRequest["workers"][number], min: number): ReadonlyArray<number> | "dynamic" =>
  worker.impl.members.length > 0 || worker.resolved.strategy === "pinned"
    ? [0]
    : worker.resolved.strategy === "auto" && worker.resolved.replicas !== undefined
      ? hostsOf(worker.resolved, min)
      : "dynamic"

/** The provider of one kind: starts an EnvPool, and routes each Worker's calls into it. */
const provider = (kind: "thread" | "process"): EnvProvider<"thread" | "process"> => ({
  slots: (request) => {
    // A scaling Env's slots below its min are never drained: created instances are placed among them.
    const count = Env.boundsOf(request.env.count, availableParallelism()).min
    return new Map(
      request.workers.filter((w) => w.impl.kind === "conc").map((w) => [w.impl.worker.key, hostsFor(w, count)])
    )
  },
  start: (request) =>
    Effect.gen(function* () {
      const bounds = Env.boundsOf(request.env.count, availableParallelism())
      const scaling = bounds.min < bounds.max
      // A scaling Env starts at its minimum, and never goes below it.
      const count = bounds.min
      for (const { impl, resolved } of request.workers) {
        if (resolved.replicas !== undefined && resolved.replicas > count) {
          return yield* new EnvStartError({
            env: request.envName,
            module: request.module,
            reason: scaling
              ? `${impl.worker.key} asks for ${resolved.replicas} replicas; Env "${request.envName}" may shrink to ${count} (its count's min): raise min to ${resolved.replicas} or more`
              : `${impl.worker.key} asks for ${resolved.replicas} replicas; Env "${request.envName}" has ${count}`
          })
        }
      }
      const routes = new Map(
        request.workers.map((w) => [w.impl.worker.key, scaling ? scalingHostsFor(w, count) : hostsFor(w, count)])
      )
      const allSlots = Array.from({ length: bounds.max }, (_, i) => i)
      const hostsOfWorker = (name: string) => {
        const route = routes.get(name)!
        return route === "dynamic" ? allSlots : route
      }
      // Read once here, so that a call never looks its method's policy up.
      const policies = new Map<string, ReadonlyMap<string, Redelivery.Policy>>()
      for (const { impl } of request.workers) {
        const found = Redelivery.policiesOf(impl.worker)
        if (typeof found === "string") {
          return yield* new EnvStartError({ env: request.envName, module: request.module, reason: found })
        }
        policies.set(impl.worker.key, found)
      }
      const workers = request.workers.map((w) => w.impl.worker.key)
      // Each Env learns which instance keys are its own: a Conc key belongs to exactly one Env.
      const hosts = Object.fromEntries(
        request.workers
          .filter((w) => w.impl.kind === "conc")
          .map((w) => {
            const route = routes.get(w.impl.worker.key)!
            return [w.impl.worker.key, route === "dynamic" ? ("directory" as const) : route]
          })
      )
      const handleCorps = Object.fromEntries(request.handleCorps)
      const monitoring =
        request.monitoring === undefined
          ? undefined
          : {
              settings: request.monitoring.settings,
              corpsName: request.monitoring.corpsName,
              envOf: request.monitoring.envOf
            }
      const locations = request.locations === undefined ? undefined : Object.fromEntries(request.locations)
      const pool = yield* EnvPool.make({
        kind,
        size: count,
        corps: request.corps,
        envName: request.envName,
        module: request.module,
        init: (index): EnvInit => ({
          corps: request.corps,
          module: request.module,
          envName: request.envName,
          index,
          workers,
          hosts,
          handleCorps,
          locations,
          ...(monitoring === undefined ? {} : { monitoring })
        }),
        // Calls the Envs make to Workers elsewhere come back to the caller's dispatcher.
        dispatch: (call) => request.dispatcher.dispatch(call),
        health: request.env,
        workers: request.workers.flatMap((w) =>
          w.resolved.supervision === undefined
            ? []
            : [
                {
                  name: w.impl.worker.key,
                  hosts: hostsOfWorker(w.impl.worker.key),
                  supervision: w.resolved.supervision
                }
              ]
        ),
        events: request.events,
        supervisor: request.supervisor
      })
      const recorder = request.monitoring?.recorder
      if (recorder !== undefined)
        yield* Monitor.watch({
          pool,
          envName: request.envName,
          // A scaling pool: every slot it may have; those not started yet show as stopped.
          size: bounds.max,
          started: count,
          corpsId: request.corps,
          corpsName: request.monitoring!.corpsName,
          recorder,
          events: request.events,
          intervalMillis: request.monitoring!.settings.intervalMillis
        })
      // Monitoring on (a Monitor in context): the dashboard sees this pool's slots.
      const monitor = yield* Effect.serviceOption(DashboardMonitor)
      if (monitor._tag === "Some") {
        yield* monitor.value.addEnv(request.corps, {
          name: request.envName,
          kind,
          size: () => bounds.max,
          ...(scaling ? { min: bounds.min, max: bounds.max } : {}),
          slot: (index) => pool.client(index)
        })
      }
      if (!scaling) return targetsOf(request, pool, routes, policies, new Map())
      const directories = new Map<string, Directory>()
      for (const { impl } of request.workers) {
        if (impl.kind === "conc" && routes.get(impl.worker.key) === "dynamic") {
          directories.set(
            impl.worker.key,
            // Created instances name one of the `min` slots (see `slots` above): those are never drained.
            new Directory(
              impl.worker.key,
              (keysOn) => placeKey(pool, keysOn),
              (slot) => slot < bounds.min
            )
          )
        }
      }
      pool.onRemoved((index) => {
        for (const directory of directories.values()) directory.dropSlot(index)
      })
      yield* Scaler.start({
        pool,
        corps: request.corps,
        envName: request.envName,
        bounds,
        policy: Scaling.resolve(request.env.scaling),
        events: request.events,
        directories: [...directories.values()],
        // Instances whose state is persisted may be passivated to drain a slot: they resume elsewhere.
        persisted: request.workers.filter((w) => w.impl.conc.state !== undefined).map((w) => w.impl.worker.key)
      })
      return targetsOf(request, pool, routes, policies, directories)
    })
})

/** The slot for a new key: the least busy in service, then the one with the fewest keys. */
const placeKey = (pool: EnvPool.EnvPool, keysOn: (slot: number) => number): number => {
  const active = pool.active
  let best = active[0]!
  let bestLoad = Number.POSITIVE_INFINITY
  let bestKeys = Number.POSITIVE_INFINITY
  for (const index of active) {
    const client = pool.client(index)
    if (client.closeReason !== undefined) continue
    const keys = keysOn(index)
    if (client.inFlight < bestLoad || (client.inFlight === bestLoad && keys < bestKeys)) {
      best = index
      bestLoad = client.inFlight
      bestKeys = keys
    }
  }
  return best
}

/** How each Worker placed in the pool is reached: a Func through its least-loaded host, a Conc key on its own host. */
const targetsOf = (
  request: Pick<StartRequest, "corps" | "workers" | "events">,
  pool: EnvPool.EnvPool,
  routes: ReadonlyMap<string, ReadonlyArray<number> | "dynamic">,
  policies: ReadonlyMap<string, ReadonlyMap<string, Redelivery.Policy>>,
  directories: ReadonlyMap<string, Directory>
): Targets => {
  // Once the Corps is closing, calls fail with CorpsClosed rather than with the CallLost of a stopped Env.
  const closed = Effect.fail(new CorpsClosed({ corps: request.corps }))
  const context: Redelivery.Context = { corps: request.corps, events: request.events, closing: () => pool.closing }
  // A lost call of an idempotent method goes again the way it went: a Func's picker, a Conc key's slot.
  const redeliverWith =
    (methods: ReadonlyMap<string, Redelivery.Policy>, route: Redelivery.Route): OnFailure | undefined =>
    (codec, call, failure) => {
      const policy = methods.get(codec.method)
      if (policy === undefined) return undefined
      const lost = Redelivery.lostIn(failure)
      return lost === undefined ? undefined : Redelivery.redeliver(context, policy, call, route, lost)
    }
  const isUp = (index: number) => pool.client(index).closeReason === undefined
  const registerOn =
    (client: () => Client): Register =>
    (call, resume) => {
      if (pool.closing) {
        resume(closed)
        return undefined
      }
      // A Worker stopped by its own policy while its Env serves the others: its calls fail at once.
      const stopped = pool.stoppedError(call.worker)
      if (stopped !== undefined) {
        resume(Effect.fail(stopped))
        return undefined
      }
      return client().register(call, resume)
    }
  const sendWith = (register: Register) => (call: Wire.Call) =>
    Effect.callback<Wire.Exit, unknown>((resume) => register(call, resume))
  const targets = new Map<string, (key: string) => Target>()
  for (const { impl } of request.workers) {
    const route = routes.get(impl.worker.key)!
    const hosts = route === "dynamic" ? undefined : route
    // A fixed route keeps today's precomputed picker; a dynamic one reads the slots in service per call.
    const pick = hosts === undefined ? pool.activePicker() : pool.picker(hosts)
    const anyUp = hosts === undefined ? () => pool.active.some(isUp) : () => hosts.some(isUp)
    const shared = impl.kind === "func" ? registerOn(pick) : undefined
    const methods = policies.get(impl.worker.key)!
    const redeliver = (route: Redelivery.Route) => (methods.size === 0 ? undefined : redeliverWith(methods, route))
    const sharedRedeliver = shared === undefined ? undefined : redeliver({ register: shared, up: anyUp })
    const directory = directories.get(impl.worker.key)
    // A Func's stream stays with the replica that opened it.
    const pin =
      impl.kind === "func"
        ? () => {
            const client = pick()
            return sendWith(registerOn(() => client))
          }
        : undefined
    targets.set(impl.worker.key, (key) => {
      if (shared !== undefined) return remoteTarget(impl.worker, key, sendWith(shared), shared, pin, sharedRedeliver)
      if (directory !== undefined) {
        const { register, up } = directoryRoute(directory, key, registerOn, pool)
        return remoteTarget(impl.worker, key, sendWith(register), register, pin, redeliver({ register, up }))
      }
      // A Conc key's Env is fixed: hash it once per handle, not once per call.
      const index = hostFor(key, hosts!)
      const register = registerOn(() => pool.client(index))
      return remoteTarget(
        impl.worker,
        key,
        sendWith(register),
        register,
        pin,
        redeliver({ register, up: () => isUp(index) })
      )
    })
  }
  return targets
}

/**
 * How calls reach one key of a Conc placed by a directory: the slot of its
 * entry, looked up again once the entry is dropped; each call is counted on
 * the entry while it is on its way, so that draining never drops a key a
 * call may be rebuilding.
 */
const directoryRoute = (
  directory: Directory,
  key: string,
  registerOn: (client: () => Client) => Register,
  pool: EnvPool.EnvPool
): { readonly register: Register; readonly up: () => boolean } => {
  let entry = directory.entry(key)
  const current = () => {
    if (entry.dropped) entry = directory.entry(key)
    return entry
  }
  const send = registerOn(() => pool.client(current().slot))
  const register: Register = (call, resume) => {
    const counted = current()
    counted.inFlight++
    let done = false
    const settle = () => {
      if (done) return
      done = true
      counted.inFlight--
    }
    const cancel = send(call, (reply) => {
      settle()
      resume(reply)
    })
    return cancel === undefined ? undefined : Effect.andThen(Effect.sync(settle), cancel)
  }
  return { register, up: () => pool.client(current().slot).closeReason === undefined }
}

/**
 * Provides the `thread` and `process` Env kinds to the Corps built below it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never> = Layer.mergeAll(
  EnvProviderLayer("thread", provider("thread")),
  EnvProviderLayer("process", provider("process"))
)

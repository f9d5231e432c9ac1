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
 * A crashed Env is started again for later calls; its calls in flight are
 * sent again when their method is `idempotent` (src/node/redelivery.ts) and
 * fail with `CallLost` otherwise.
 *
 * @since 0.1.0
 */
import { availableParallelism } from "node:os"
import { Effect, Layer } from "effect"
import { CorpsClosed, EnvStartError } from "../CorpsError.ts"
import { type OnFailure, type Register, remoteTarget } from "../internal/dispatch.ts"
import {
  type EnvProvider,
  layer as EnvProviderLayer,
  type StartRequest,
  type Targets
} from "../internal/envProvider.ts"
import type { Target } from "../internal/handle.ts"
import type * as Wire from "../internal/wire.ts"
import * as EnvPool from "./EnvPool.ts"
import type { EnvInit } from "./envInit.ts"
import * as Redelivery from "./redelivery.ts"
import { hostFor, hostsOf } from "./routing.ts"
import type { Client } from "./transport/Client.ts"

/** The hosts of one Worker. A Corps with private members is one unit: replicas would each hold their own members' state. */
const hostsFor = (worker: StartRequest["workers"][number], count: number): ReadonlyArray<number> =>
  worker.impl.members.length > 0 ? [0] : hostsOf(worker.resolved, count)

/** The provider of one kind: starts an EnvPool, and routes each Worker's calls into it. */
const provider = (kind: "thread" | "process"): EnvProvider<"thread" | "process"> => ({
  slots: (request) => {
    const count = request.env.count ?? availableParallelism()
    return new Map(
      request.workers.filter((w) => w.impl.kind === "conc").map((w) => [w.impl.worker.key, hostsFor(w, count)])
    )
  },
  start: (request) =>
    Effect.gen(function* () {
      const count = request.env.count ?? availableParallelism()
      for (const { impl, resolved } of request.workers) {
        if (resolved.replicas !== undefined && resolved.replicas > count) {
          return yield* new EnvStartError({
            env: request.envName,
            module: request.module,
            reason: `${impl.worker.key} asks for ${resolved.replicas} replicas; Env "${request.envName}" has ${count}`
          })
        }
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
        request.workers.filter((w) => w.impl.kind === "conc").map((w) => [w.impl.worker.key, hostsFor(w, count)])
      )
      const handleCorps = Object.fromEntries(request.handleCorps)
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
          locations
        }),
        // Calls the Envs make to Workers elsewhere come back to the caller's dispatcher.
        dispatch: (call) => request.dispatcher.dispatch(call),
        health: request.env,
        workers: request.workers.flatMap((w) =>
          w.resolved.supervision === undefined
            ? []
            : [{ name: w.impl.worker.key, hosts: hostsFor(w, count), supervision: w.resolved.supervision }]
        ),
        events: request.events,
        supervisor: request.supervisor
      })
      return targetsOf(request, pool, count, policies)
    })
})

/** How each Worker placed in the pool is reached: a Func through its least-loaded host, a Conc key on its own host. */
const targetsOf = (
  request: Pick<StartRequest, "corps" | "workers" | "events">,
  pool: EnvPool.EnvPool,
  count: number,
  policies: ReadonlyMap<string, ReadonlyMap<string, Redelivery.Policy>>
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
  for (const { impl, resolved } of request.workers) {
    const hosts = hostsFor({ impl, resolved }, count)
    const pick = pool.picker(hosts)
    const shared = impl.kind === "func" ? registerOn(pick) : undefined
    const methods = policies.get(impl.worker.key)!
    const redeliver = (route: Redelivery.Route) => (methods.size === 0 ? undefined : redeliverWith(methods, route))
    const sharedRedeliver =
      shared === undefined ? undefined : redeliver({ register: shared, up: () => hosts.some(isUp) })
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
      // A Conc key's Env is fixed: hash it once per handle, not once per call.
      const index = hostFor(key, hosts)
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
 * Provides the `thread` and `process` Env kinds to the Corps built below it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never> = Layer.mergeAll(
  EnvProviderLayer("thread", provider("thread")),
  EnvProviderLayer("process", provider("process"))
)

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
 * over the batched transport (src/node/transport); Funcs go to the
 * least-loaded replica, Conc instances live in the Env their key hashes to.
 * A crashed Env fails its calls in flight with `CallLost` at once and is
 * started again for later calls.
 *
 * @since 0.1.0
 */
import { fork } from "node:child_process"
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import { Worker as NodeWorker } from "node:worker_threads"
import { Effect, Fiber, Layer, Scope } from "effect"
import { type CallLost, CorpsClosed, EnvStartError } from "../CorpsError.ts"
import type * as Env from "../Env.ts"
import { type EnvProvider, layer as EnvProviderLayer, type StartRequest } from "../EnvProvider.ts"
import { type Register, remoteTarget, type WireExit } from "../internal/dispatch.ts"
import type { Target } from "../internal/handle.ts"
import { split } from "./duplex.ts"
import { hostFor, hostsOf } from "./routing.ts"
import { type Client, makeClient } from "./transport/Client.ts"
import type * as Frame from "./transport/Frame.ts"
import { fromChildProcess, fromWorker, type Link } from "./transport/Link.ts"
import { serve } from "./transport/Server.ts"
import { CONTROL, type EnvInit, INIT_VARIABLE } from "./wire.ts"

// From source (`.ts`, run by Node 24) the entry is `envMain.ts`; from the built package it is `envMain.js`.
const entry = new URL(import.meta.url.endsWith(".ts") ? "./envMain.ts" : "./envMain.js", import.meta.url)

/** How long a shutting-down Env may take to run its finalizers before it is stopped anyway. */
const SHUTDOWN_TIMEOUT = "5 seconds"
/** How long an Env may take to import its module and build its Workers. */
const START_TIMEOUT = "30 seconds"
/** Pause before an Env that crashed is started again. */
const RESTART_DELAY = "100 millis"

/** Starts one Env (thread or process) and returns the Link to it. */
const spawn = (kind: "thread" | "process", init: EnvInit): Link => {
  if (kind === "thread") return fromWorker(new NodeWorker(entry, { workerData: init }))
  const child = fork(fileURLToPath(entry), [], {
    serialization: "advanced",
    env: { ...process.env, [INIT_VARIABLE]: JSON.stringify(init) },
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  return fromChildProcess(child)
}

/** One started Env: its client (calls into it) and the fiber serving its calls back to the caller. */
interface Slot {
  client: Client
  link: Link
  server: Fiber.Fiber<void>
}

/** The hosts of one Worker. A Corps with private members is one unit: replicas would each hold their own members' state. */
const hostsFor = (worker: StartRequest["workers"][number], count: number): ReadonlyArray<number> =>
  worker.impl.members.length > 0 ? [0] : hostsOf(worker.resolved, count)

const control = (client: Client, method: string): Effect.Effect<unknown, CallLost> =>
  Effect.map(client.call({ worker: CONTROL, key: "", method, payload: null }), (reply) =>
    reply._tag === "Success" ? reply.value : undefined
  )

/** The provider of one kind. */
const provider = (kind: "thread" | "process"): EnvProvider => ({
  buildsCorps: true,
  start: (request: StartRequest) =>
    Effect.gen(function* () {
      const env = request.env as Env.Env & { readonly count?: number | undefined }
      const count = env.count ?? availableParallelism()
      for (const { impl, resolved } of request.workers) {
        if (resolved.replicas !== undefined && resolved.replicas > count) {
          return yield* new EnvStartError({
            env: request.envName,
            module: request.module,
            reason: `${impl.worker.key} asks for ${resolved.replicas} replicas; Env "${request.envName}" has ${count}`
          })
        }
      }
      const scope = yield* Effect.scope
      const workers = request.workers.map((w) => w.impl.worker.key)
      // Each Env learns which instance keys are its own: a Conc key belongs to exactly one Env.
      const hosts = Object.fromEntries(
        request.workers.filter((w) => w.impl.kind === "conc").map((w) => [w.impl.worker.key, hostsFor(w, count)])
      )
      let closing = false
      const slots: Array<Slot> = []

      /** Starts Env `index`; fails with EnvStartError when its module or a Worker cannot be built. */
      const start = (index: number): Effect.Effect<Slot, EnvStartError> =>
        Effect.suspend(() => {
          const init: EnvInit = {
            corps: request.corps,
            module: request.module,
            envName: request.envName,
            index,
            workers,
            hosts,
            handleCorps: Object.fromEntries(request.handleCorps)
          }
          const link = spawn(kind, init)
          // Failed, timed out or interrupted while starting: the Env must not outlive the attempt.
          return connect(index, init, link).pipe(
            Effect.timeoutOrElse({
              duration: START_TIMEOUT,
              orElse: () =>
                Effect.fail(
                  new EnvStartError({
                    env: init.envName,
                    module: request.module,
                    reason: `not ready after ${START_TIMEOUT}`
                  })
                )
            }),
            Effect.onError(() => link.close)
          )
        })

      const connect = (index: number, init: EnvInit, link: Link): Effect.Effect<Slot, EnvStartError> =>
        Effect.gen(function* () {
          const { calling, serving } = split(link)
          const client = yield* makeClient(calling, { envName: `${request.envName}#${index}` })
          // Calls the Env makes to Workers elsewhere come back to the caller's dispatcher.
          const server = yield* Effect.forkIn(
            serve(serving, (call) => request.dispatcher.dispatch(call)),
            scope
          )
          const slot: Slot = { client, link, server }
          const problem = yield* control(client, "ready").pipe(
            Effect.catchTag("CallLost", (lost) => Effect.succeed(lost.reason))
          )
          if (problem !== null && problem !== undefined) {
            yield* link.close
            return yield* new EnvStartError({ env: init.envName, module: request.module, reason: String(problem) })
          }
          link.onClose(() => {
            if (!closing) restart(index)
          })
          return slot
        })

      // A crashed Env: its calls already failed with CallLost; start it again for later calls.
      const restarts = new Set<Fiber.Fiber<unknown>>()
      const restart = (index: number): void => {
        const fiber: Fiber.Fiber<unknown> = Effect.runFork(
          Effect.sleep(RESTART_DELAY).pipe(
            Effect.andThen(start(index)),
            Effect.flatMap((slot) =>
              // The Corps may have begun closing while this Env started: stop it rather than leak it.
              closing ? slot.link.close : Effect.sync(() => void (slots[index] = slot))
            ),
            Effect.retry({ times: 5 }),
            Effect.catch((error) =>
              Effect.logError(`effect-corps: Env ${request.envName}#${index} could not be restarted`, error)
            ),
            Effect.ensuring(Effect.sync(() => restarts.delete(fiber)))
          )
        )
        restarts.add(fiber)
      }

      /** Asks every Env to run its finalizers, then stops it (a thread is terminated, a process killed if need be). */
      const stopAll = (): Effect.Effect<void> =>
        Effect.forEach(
          slots,
          (slot) =>
            control(slot.client, "shutdown").pipe(
              Effect.timeout(SHUTDOWN_TIMEOUT),
              Effect.ignore,
              Effect.andThen(slot.link.close),
              Effect.andThen(Fiber.interrupt(slot.server))
            ),
          { concurrency: "unbounded", discard: true }
        )

      slots.push(
        ...(yield* Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          start,
          { concurrency: "unbounded" }
        ).pipe(Effect.onError(() => stopAll())))
      )

      yield* Scope.addFinalizer(
        scope,
        Effect.suspend(() => {
          closing = true
          return Effect.andThen(Fiber.interruptAll([...restarts]), stopAll())
        })
      )

      /** The least-loaded open client among `hosts` (round-robin start, so ties spread). */
      let turn = 0
      const pickAmong = (hosts: ReadonlyArray<number>) => (): Client => {
        const start = turn++ % hosts.length
        let best: Client | undefined
        for (let k = 0; k < hosts.length; k++) {
          const client = slots[hosts[(start + k) % hosts.length]!]!.client
          if (client.closeReason !== undefined) continue
          if (best === undefined || client.inFlight < best.inFlight) best = client
          if (client.inFlight === 0) break
        }
        // Every one is down: the first fails the call with its CallLost.
        return best ?? slots[hosts[0]!]!.client
      }
      // Once the Corps is closing, calls fail with CorpsClosed rather than with the CallLost of a stopped Env.
      const closed = Effect.fail(new CorpsClosed({ corps: request.corps }))
      const targets = new Map<string, (key: string) => Target>()
      const registerOn =
        (client: () => Client): Register =>
        (call, resume) => {
          if (closing) {
            resume(closed)
            return undefined
          }
          return client().register(call, resume)
        }
      const sendWith = (register: Register) => (call: Frame.Call) =>
        Effect.callback<WireExit, unknown>((resume) => register(call, resume))
      for (const { impl, resolved } of request.workers) {
        const hosts = hostsFor({ impl, resolved }, count)
        const pick = pickAmong(hosts)
        const shared = impl.kind === "func" ? registerOn(pick) : undefined
        // A Func's stream stays with the replica that opened it.
        const pin =
          impl.kind === "func"
            ? () => {
                const client = pick()
                return sendWith(registerOn(() => client))
              }
            : undefined
        targets.set(impl.worker.key, (key) => {
          // The key's Env is fixed: hash it once per handle, not once per call.
          const index = hostFor(key, hosts)
          const register = shared ?? registerOn(() => slots[index]!.client)
          return remoteTarget(impl.worker, key, sendWith(register), register, pin)
        })
      }
      return targets as ReadonlyMap<string, (key: string) => Target>
    })
})

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

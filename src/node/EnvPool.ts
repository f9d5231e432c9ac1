/**
 * The threads or processes of one Env name: a fixed number of slots,
 * addressed by index, each holding one started Env (its client, its link and
 * the fiber serving its calls back to the caller). The pool spawns and
 * connects an Env, starts a crashed one again, picks the least-loaded one for
 * a call, and stops them all when its scope closes.
 *
 * Everything runs in the scope of the Corps that made the pool: restarts are
 * fibers of the pool's supervisor, itself forked in that scope, so closing
 * the Corps interrupts them and nothing outlives it. Supervision policies,
 * autoscaling and lifecycle events belong here.
 */
import { fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Worker as NodeWorker } from "node:worker_threads"
import { Effect, Fiber, Queue, Scope } from "effect"
import { type CallLost, EnvStartError } from "../CorpsError.ts"
import type * as Wire from "../internal/wire.ts"
import { split } from "./duplex.ts"
import { CONTROL, type EnvInit, INIT_VARIABLE } from "./envInit.ts"
import { type Client, makeClient } from "./transport/Client.ts"
import { fromChildProcess, fromWorker, type Link } from "./transport/Link.ts"
import { serve } from "./transport/Server.ts"

// From source (`.ts`, run by Node 24) the entry is `envMain.ts`; from the built package it is `envMain.js`.
const entry = new URL(import.meta.url.endsWith(".ts") ? "./envMain.ts" : "./envMain.js", import.meta.url)

/** How long a shutting-down Env may take to run its finalizers before it is stopped anyway. */
const SHUTDOWN_TIMEOUT = "5 seconds"
/** How long an Env may take to import its module and build its Workers. */
const START_TIMEOUT = "30 seconds"
/** Pause before an Env that crashed is started again. */
const RESTART_DELAY = "100 millis"
/** Failed starts of a crashed Env tried again before it is left down. */
const RESTART_RETRIES = 5

/** Options of {@link make}. */
export interface EnvPoolOptions {
  readonly kind: "thread" | "process"
  /** Slots, numbered 0 to `size - 1`. */
  readonly size: number
  /** The Env's name in the placement (a slot is `<envName>#<index>` in errors). */
  readonly envName: string
  readonly module: string
  /** What the Env in slot `index` is told when it starts. */
  readonly init: (index: number) => EnvInit
  /** Runs the calls an Env makes to Workers elsewhere (the caller's dispatcher). */
  readonly dispatch: (call: Wire.Call) => Effect.Effect<Wire.Exit>
}

/** The Envs of one Env name. */
export interface EnvPool {
  readonly size: number
  /** Whether the pool's scope is closing: no call should be sent any more. */
  readonly closing: boolean
  /** The client of the Env in slot `index` (a restarted Env has a new one). */
  readonly client: (index: number) => Client
  /**
   * A picker over the slots `hosts`: each call of it returns the open client
   * with the fewest calls in flight, searching from the next host in turn so
   * that ties spread; the first host's client when every one is closed.
   */
  readonly picker: (hosts: ReadonlyArray<number>) => () => Client
}

/** One started Env. */
interface Slot {
  readonly client: Client
  readonly link: Link
  readonly server: Fiber.Fiber<void>
}

/**
 * The least-loaded open client among `hosts`, searching from `start`; the
 * first host's client (which fails the call with its CallLost) when all are
 * closed. Least-loaded rather than "fill the first one": the stock RPC worker
 * protocol fills one worker up to its concurrency before using the next.
 */
export const leastLoaded = (
  clientOf: (index: number) => Client,
  hosts: ReadonlyArray<number>,
  start: number
): Client => {
  let best: Client | undefined
  for (let k = 0; k < hosts.length; k++) {
    const client = clientOf(hosts[(start + k) % hosts.length]!)
    if (client.closeReason !== undefined) continue
    if (best === undefined || client.inFlight < best.inFlight) best = client
    if (client.inFlight === 0) break
  }
  return best ?? clientOf(hosts[0]!)
}

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

const control = (client: Client, method: string): Effect.Effect<unknown, CallLost> =>
  Effect.map(client.call({ worker: CONTROL, key: "", method, payload: null }), (reply) =>
    reply._tag === "Success" ? reply.value : undefined
  )

/**
 * Starts `size` Envs and waits until each is ready; fails with EnvStartError
 * (stopping those already started) if one cannot start. The Envs live until
 * the current scope closes.
 */
export const make = (options: EnvPoolOptions): Effect.Effect<EnvPool, EnvStartError, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const slots: Array<Slot> = []
    let closing = false
    // Crashed slots, by index: the supervisor starts them again (link close callbacks are not Effects).
    const crashed = yield* Queue.unbounded<number>()

    const fail = (reason: string) => new EnvStartError({ env: options.envName, module: options.module, reason })

    /** Starts the Env of slot `index`; fails with EnvStartError when its module or a Worker cannot be built. */
    const start = (index: number): Effect.Effect<Slot, EnvStartError> =>
      Effect.suspend(() => {
        const link = spawn(options.kind, options.init(index))
        // Failed, timed out or interrupted while starting: the Env must not outlive the attempt.
        return connect(index, link).pipe(
          Effect.timeoutOrElse({
            duration: START_TIMEOUT,
            orElse: () => Effect.fail(fail(`not ready after ${START_TIMEOUT}`))
          }),
          Effect.onError(() => link.close)
        )
      })

    const connect = (index: number, link: Link): Effect.Effect<Slot, EnvStartError> =>
      Effect.gen(function* () {
        const { calling, serving } = split(link)
        const client = yield* makeClient(calling, { envName: `${options.envName}#${index}` })
        const server = yield* Effect.forkIn(serve(serving, options.dispatch), scope)
        const problem = yield* control(client, "ready").pipe(
          Effect.catchTag("CallLost", (lost) => Effect.succeed(lost.reason))
        )
        if (problem !== null && problem !== undefined) {
          yield* link.close
          return yield* fail(String(problem))
        }
        link.onClose(() => {
          if (!closing) Queue.offerUnsafe(crashed, index)
        })
        return { client, link, server }
      })

    // A crashed Env: its calls already failed with CallLost; start it again for later calls.
    const restart = (index: number): Effect.Effect<void> =>
      Effect.sleep(RESTART_DELAY).pipe(
        Effect.andThen(start(index)),
        Effect.flatMap((slot) =>
          // The Corps may have begun closing while this Env started: stop it rather than leak it.
          closing ? slot.link.close : Effect.sync(() => void (slots[index] = slot))
        ),
        Effect.retry({ times: RESTART_RETRIES }),
        Effect.catch((error) =>
          Effect.logError(`effect-corps: Env ${options.envName}#${index} could not be restarted`, error)
        )
      )

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
        Array.from({ length: options.size }, (_, i) => i),
        start,
        { concurrency: "unbounded" }
      ).pipe(Effect.onError(() => stopAll())))
    )

    // Restarts are children of the supervisor: interrupting it interrupts them.
    const supervisor = yield* Effect.forkIn(
      Effect.forever(Effect.flatMap(Queue.take(crashed), (index) => Effect.forkChild(restart(index)))),
      scope
    )
    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => {
        closing = true
        return Effect.andThen(Fiber.interrupt(supervisor), stopAll())
      })
    )

    let turn = 0
    const client = (index: number): Client => slots[index]!.client
    return {
      size: options.size,
      get closing() {
        return closing
      },
      client,
      picker: (hosts) => () => leastLoaded(client, hosts, turn++ % hosts.length)
    }
  })

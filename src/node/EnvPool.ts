/**
 * The threads or processes of one Env name: a fixed number of slots,
 * addressed by index, each holding one started Env (its client, its link and
 * the fiber serving its calls back to the caller). The pool spawns and
 * connects an Env, supervises it, picks the least-loaded one for a call, and
 * stops them all when its scope closes.
 *
 * Supervision (docs/supervision.md): a lost Env (crashed, exited, out of
 * memory, or hung past `hangTimeoutMillis`) is replaced under the Env's
 * policy — by the warm spare at once when one is ready, else by a fresh
 * start — with backoff between consecutive restarts, until the policy's
 * intensity limit. Then its outcome applies: `stop` fails the calls of the
 * Workers placed here with `WorkerStopped`, `escalate` fails every pool of the
 * Corps with `CorpsFailed`. Every step is a CorpsEvent.
 *
 * Everything runs in the scope of the Corps that made the pool: restarts and
 * heartbeats are fibers of the pool's supervisor, itself forked in that
 * scope, so closing the Corps interrupts them and nothing outlives it.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Worker as NodeWorker } from "node:worker_threads"
import { Clock, Effect, Fiber, Queue, Scope } from "effect"
import { type CallLost, CorpsFailed, EnvStartError, WorkerStopped } from "../CorpsError.ts"
import type * as CorpsEvent from "../CorpsEvent.ts"
import type * as Env from "../Env.ts"
import type { EventHub } from "../internal/events.ts"
import type { Supervisor } from "../internal/supervisor.ts"
import type * as Wire from "../internal/wire.ts"
import * as Supervision from "../Supervision.ts"
import { split } from "./duplex.ts"
import { servingEnv } from "./envEvents.ts"
import { CONTROL, type EnvInit, INIT_VARIABLE } from "./envInit.ts"
import type { EnvLoad } from "./load.ts"
import { type Client, makeClient } from "./transport/Client.ts"
import { fromChildProcess, fromWorker, type Link } from "./transport/Link.ts"
import { serve } from "./transport/Server.ts"

// From source (`.ts`, run by Node 24) the entry is `envMain.ts`; from the built package it is `envMain.js`.
const entry = new URL(import.meta.url.endsWith(".ts") ? "./envMain.ts" : "./envMain.js", import.meta.url)

/** How long a shutting-down Env may take to run its finalizers before it is stopped anyway. */
const SHUTDOWN_TIMEOUT = "5 seconds"
/** How long an Env may take to import its module and build its Workers. */
const START_TIMEOUT = "30 seconds"
/** Pause before a spare that died idle (or could not start) is started again. */
const SPARE_RETRY_DELAY = "1 second"

/** How the Envs of a pool are kept healthy: the Env's settings in the placement. */
export interface Health {
  readonly supervision?: Supervision.Policy | undefined
  readonly hangTimeoutMillis?: number | undefined
  readonly spare?: boolean | undefined
  readonly resourceLimits?: typeof Env.ResourceLimits.Type | undefined
  readonly maxOldSpaceSizeMb?: number | undefined
}

/** A Worker placed in the pool with a supervision policy of its own. */
export interface SupervisedWorker {
  readonly name: string
  /** The slots that host it: a crash of one of them counts against its limit. */
  readonly hosts: ReadonlyArray<number>
  readonly supervision: Supervision.Policy
}

/** Options of {@link make}. */
export interface EnvPoolOptions {
  readonly kind: "thread" | "process" | "host"
  /**
   * Starts the Env of slot `index` elsewhere (the `host` kind dials a
   * daemon); thread and process Envs are started here when absent.
   */
  readonly spawn?: ((init: EnvInit, index: number) => Effect.Effect<Spawned, EnvStartError>) | undefined
  /** Slots at the start, numbered 0 to `size - 1` (a scaling pool adds and removes slots above them: {@link EnvPool.grow}). */
  readonly size: number
  /** The Corps' id (in events and errors). */
  readonly corps: string
  /** The Env's name in the placement (a slot is `<envName>#<index>` in errors). */
  readonly envName: string
  readonly module: string
  /** What the Env in slot `index` is told when it starts (-1: a warm spare, told its slot when it takes over). */
  readonly init: (index: number) => EnvInit
  /** Runs the calls an Env makes to Workers elsewhere (the caller's dispatcher). */
  readonly dispatch: (call: Wire.Call) => Effect.Effect<Wire.Exit>
  /** Supervision policy and health checks (the Env's placement settings). */
  readonly health?: Health | undefined
  /** Workers placed here with a policy of their own. */
  readonly workers?: ReadonlyArray<SupervisedWorker> | undefined
  /** Where supervision events go (the Corps tree's hub). */
  readonly events?: EventHub | undefined
  /** Where an exhausted `escalate` policy goes (the Corps' supervisor). */
  readonly supervisor: Supervisor
}

/** The Envs of one Env name. */
export interface EnvPool {
  /** Whether the pool's scope is closing: no call should be sent any more. */
  readonly closing: boolean
  /** Whether the pool was stopped or failed by supervision: nothing is started any more. */
  readonly halted: boolean
  /** The error of a Worker stopped by its own policy (its calls fail at once with it), or `undefined`. */
  readonly stoppedError: (worker: string) => WorkerStopped | undefined
  /**
   * The client of the Env in slot `index` (a restarted Env has a new one; a
   * stopped or failed pool answers every call at once with its typed error).
   */
  readonly client: (index: number) => Client
  /**
   * A picker over the slots `hosts`: each call of it returns the open client
   * with the fewest calls in flight, searching from the next host in turn so
   * that ties spread; the first host's client when every one is closed.
   */
  readonly picker: (hosts: ReadonlyArray<number>) => () => Client
  /**
   * The load of the Env in slot `index` since the previous sample of it
   * (src/node/load.ts); `undefined` when the slot has no live Env. One
   * reader should sample a slot: each sample starts the next window.
   */
  readonly load: (index: number) => Effect.Effect<EnvLoad | undefined>
  /**
   * The monitoring figures of the Env in slot `index` since the previous
   * collection (the `metrics` control call: src/node/monitor.ts);
   * `undefined` when the slot has no live Env.
   */
  readonly metrics: (index: number) => Effect.Effect<unknown>
  /**
   * The last sample {@link load} answered for slot `index`, without taking
   * a new one: what a scaling pool's scaler saw (it samples every
   * `sampleMillis`), for monitoring to show without splitting its windows.
   */
  readonly lastLoad: (index: number) => EnvLoad | undefined
  /**
   * The slots in service that take new work, in ascending order. Fixed for a
   * fixed-size pool; a scaling pool's changes with {@link grow} and
   * {@link drain} (a new array each time: hold the pool, not the array).
   */
  readonly active: ReadonlyArray<number>
  /**
   * A picker over the {@link active} slots as they are at each call (Funcs
   * of a scaling Env): new slots are picked at once, draining ones no more.
   */
  readonly activePicker: () => () => Client
  /**
   * Puts `count` more slots in service: draining slots first (they are
   * still running), then the warm spare, then fresh starts in parallel.
   * Answers how many were added, and why the others could not start (the
   * caller reports them: a start cut short by the Corps closing is no news).
   */
  readonly grow: (count: number) => Effect.Effect<Grown>
  /** Takes slot `index` out of {@link active}: it finishes its work and takes no new keys. */
  readonly drain: (index: number) => void
  /** Whether slot `index` is draining (false once it is back in service or removed). */
  readonly draining: (index: number) => boolean
  /**
   * Stops the draining slot `index` (its finalizers run) and frees it.
   * Listeners of {@link onRemoved} are told first, synchronously, so that no
   * call is routed to it afterwards. False when it is not draining.
   */
  readonly remove: (index: number) => Effect.Effect<boolean>
  /** Calls `listener` with the index of each slot removed (drained, or lost while draining). */
  readonly onRemoved: (listener: (index: number) => void) => void
}

/** What {@link EnvPool.grow} did. */
export interface Grown {
  readonly added: number
  readonly failures: ReadonlyArray<EnvStartError>
}

/** Why an Env was lost, as far as its own signals tell. */
export interface Diagnosis {
  hang: boolean
  memory: boolean
}

/** A started thread, process or host Env, before it is connected. */
export interface Spawned {
  readonly link: Link
  readonly diagnosis: Diagnosis
  /** Ends it at once, even with its event loop blocked (terminate the thread, SIGKILL the process). */
  readonly kill: () => void
  /** Resolves once everything it wrote is read (a process' stderr), so that the diagnosis is complete. */
  readonly settled: Promise<void>
}

/** One started Env. */
interface Slot {
  readonly client: Client
  readonly link: Link
  readonly spawned: Spawned
  readonly server: Fiber.Fiber<void>
  /** The slot it serves; -1 while it is the spare. */
  index: number
  heartbeat: Fiber.Fiber<void> | undefined
  /** Taken out of service by scaling down: finishing its work, never restarted. */
  draining: boolean
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

/** V8's last words when a process runs out of heap. */
const OUT_OF_MEMORY = /heap out of memory|Reached heap limit|Allocation failed/

/** Starts one Env (thread or process), with its memory limits and the signals that diagnose its loss. */
const spawnHere = (kind: "thread" | "process", init: EnvInit, health: Health): Spawned => {
  const diagnosis: Diagnosis = { hang: false, memory: false }
  if (kind === "thread") {
    const worker = new NodeWorker(entry, {
      workerData: init,
      ...(health.resourceLimits === undefined ? {} : { resourceLimits: health.resourceLimits })
    })
    // Before the link's own listeners see the exit that follows.
    worker.on("error", (error: Error & { code?: string }) => {
      if (error.code === "ERR_WORKER_OUT_OF_MEMORY") diagnosis.memory = true
    })
    return {
      link: fromWorker(worker),
      diagnosis,
      kill: () => void worker.terminate(),
      settled: Promise.resolve()
    }
  }
  const child: ChildProcess = fork(fileURLToPath(entry), [], {
    serialization: "advanced",
    env: { ...process.env, [INIT_VARIABLE]: JSON.stringify(init) },
    execArgv:
      health.maxOldSpaceSizeMb === undefined
        ? process.execArgv
        : [...process.execArgv, `--max-old-space-size=${health.maxOldSpaceSizeMb}`],
    // stderr is read (and passed on) to tell an out-of-memory abort from other deaths.
    stdio: ["ignore", "inherit", "pipe", "ipc"]
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    process.stderr.write(chunk)
    if (OUT_OF_MEMORY.test(chunk.toString())) diagnosis.memory = true
  })
  const settled = new Promise<void>((resolve) => {
    child.once("close", () => resolve())
  })
  return {
    link: fromChildProcess(child),
    diagnosis,
    kill: () => void child.kill("SIGKILL"),
    settled
  }
}

/** Why a lost Env was lost, from its diagnosis and the reason its link closed. */
const classify = (diagnosis: Diagnosis, closeReason: string): typeof CorpsEvent.CrashReason.Type =>
  diagnosis.hang ? "hang" : diagnosis.memory ? "memory" : /exited with code/.test(closeReason) ? "exited" : "crashed"

const control = (client: Client, method: string, payload: unknown = null): Effect.Effect<unknown, CallLost> =>
  Effect.map(client.call({ worker: CONTROL, key: "", method, payload }), (reply) =>
    reply._tag === "Success" ? reply.value : undefined
  )

/**
 * A client that sends nothing: every call fails at once with `error`. It
 * stands in a slot whose Workers were stopped or whose Corps failed.
 */
const refusing = (envName: string, error: (request: Wire.Call) => unknown, reason: string): Client => {
  const fail = (request: Wire.Call) => Effect.fail(error(request)) as Effect.Effect<never, CallLost>
  return {
    envName,
    inFlight: 0,
    closeReason: reason,
    close: Effect.void,
    call: fail,
    register: (request, resume) => {
      resume(fail(request))
      return undefined
    }
  }
}

/** What the supervisor acts on: a lost slot, or stopping every Env once the pool is stopped or failed. */
type Command = { readonly _tag: "lost"; readonly slot: Slot } | { readonly _tag: "stop" }

/**
 * Starts `size` Envs and waits until each is ready; fails with EnvStartError
 * (stopping those already started) if one cannot start. The Envs live until
 * the current scope closes.
 */
export const make = (options: EnvPoolOptions): Effect.Effect<EnvPool, EnvStartError, Scope.Scope> =>
  Effect.gen(function* () {
    const outer = yield* Effect.scope
    // The fibers of the Envs (servers, heartbeats, starts) live in a child scope, closed only after the
    // pool's own finalizer has marked it closing: a start cut short by the close is then known as such.
    const scope = yield* Scope.fork(outer)
    const health = options.health ?? {}
    const policy = Supervision.resolve(health.supervision)
    const corps = options.corps
    const corpsSupervisor = options.supervisor
    /** Slots by index; a removed slot leaves a hole until `grow` fills it. */
    const slots: Array<Slot | undefined> = []
    /** What `client(index)` answers: the slot's client, or a refusing stand-in once stopped or failed. */
    const clients: Array<Client> = []
    /** Workers stopped by their own policy, while the Env serves the others. */
    const stopped = new Map<string, WorkerStopped>()
    let spare: Slot | undefined
    let closing = false
    /** Stopped or failed: nothing is restarted any more. */
    let halted = false
    let history: ReadonlyArray<number> = []
    const backoffs: Array<ReturnType<typeof Supervision.backoffs>> = []
    const backoffOf = (index: number) => (backoffs[index] ??= Supervision.backoffs(policy))
    /** Slots in service taking new work (see EnvPool.active). */
    let active: ReadonlyArray<number> = Array.from({ length: options.size }, (_, i) => i)
    /** Indexes being started by `grow`, not yet installed. */
    const reserved = new Set<number>()
    const removedListeners: Array<(index: number) => void> = []
    /** The last load sample of each slot (see EnvPool.lastLoad). */
    const lastLoads: Array<EnvLoad | undefined> = []
    const watchers = (options.workers ?? []).map((worker) => ({
      worker,
      policy: Supervision.resolve(worker.supervision, health.supervision),
      history: [] as ReadonlyArray<number>,
      done: false
    }))
    const commands = yield* Queue.unbounded<Command>()

    const emit = (event: CorpsEvent.CorpsEvent): Effect.Effect<void> =>
      options.events === undefined ? Effect.void : options.events.emit(event)
    const now = Clock.currentTimeMillis

    const fail = (reason: string) => new EnvStartError({ env: options.envName, module: options.module, reason })

    /** Starts an Env for slot `index` (-1: the spare); fails with EnvStartError when its module or a Worker cannot be built. */
    const start = (index: number): Effect.Effect<Slot, EnvStartError> =>
      Effect.suspend(() => {
        const init = options.init(index)
        const spawning =
          options.spawn !== undefined
            ? options.spawn(init, index)
            : Effect.sync(() => spawnHere(options.kind as "thread" | "process", init, health))
        // Failed, timed out or interrupted while starting: the Env must not outlive the attempt.
        return Effect.flatMap(spawning, (spawned) =>
          connect(index, spawned).pipe(
            Effect.onError(() => Effect.andThen(Effect.sync(spawned.kill), spawned.link.close))
          )
        ).pipe(
          Effect.timeoutOrElse({
            duration: START_TIMEOUT,
            orElse: () => Effect.fail(fail(`not ready after ${START_TIMEOUT}`))
          })
        )
      })

    const connect = (index: number, spawned: Spawned): Effect.Effect<Slot, EnvStartError> =>
      Effect.gen(function* () {
        const link = spawned.link
        const { calling, serving } = split(link)
        const client = yield* makeClient(calling, { envName: `${options.envName}#${index}` })
        const server = yield* Effect.forkIn(serve(serving, servingEnv(options.dispatch, options.events)), scope)
        const problem = yield* control(client, "ready").pipe(
          Effect.catchTag("CallLost", (lost) => Effect.succeed(lost.reason))
        )
        if (problem !== null && problem !== undefined) {
          yield* link.close
          return yield* fail(String(problem))
        }
        const slot: Slot = { client, link, spawned, server, index, heartbeat: undefined, draining: false }
        link.onClose(() => {
          if (!closing) Queue.offerUnsafe(commands, { _tag: "lost", slot })
        })
        return slot
      })

    /**
     * Pings the Env of `slot` every `timeout` ms; one that has not answered
     * by the next ping (its event loop is blocked) is killed, and its loss is
     * diagnosed as a hang: found between `timeout` and twice that after the
     * loop blocks. The ping is never interrupted (an interrupted call waits for
     * the Env to confirm, which a blocked Env never does): it only sets a flag.
     */
    const heartbeat = (slot: Slot, timeout: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        let answered = false
        slot.client.register({ worker: CONTROL, key: "", method: "ping", payload: null }, () => {
          answered = true
        })
        return Effect.sleep(timeout).pipe(
          Effect.andThen(
            Effect.sync(() => {
              if (answered || slot.link.closeReason !== undefined) return true
              slot.spawned.diagnosis.hang = true
              slot.spawned.kill()
              return false
            })
          )
        )
      }).pipe(Effect.repeat({ while: (alive) => alive && slot.link.closeReason === undefined }), Effect.asVoid)

    /** Puts `slot` in service at `index`. */
    const install = (slot: Slot, index: number): Effect.Effect<void> =>
      Effect.gen(function* () {
        slot.index = index
        // A spare was started as `<env>#-1`: its CallLost errors must name the slot it now serves.
        ;(slot.client as { envName: string }).envName = `${options.envName}#${index}`
        slots[index] = slot
        clients[index] = slot.client
        // Lost between its start and now: its close notice may have been taken for another's.
        if (slot.link.closeReason !== undefined && !closing) Queue.offerUnsafe(commands, { _tag: "lost", slot })
        if (health.hangTimeoutMillis !== undefined) {
          slot.heartbeat = yield* Effect.forkIn(heartbeat(slot, health.hangTimeoutMillis), scope)
        }
      })

    /** Asks an Env to run its finalizers, then stops it (a thread is terminated, a process killed if need be). */
    const stopSlot = (slot: Slot): Effect.Effect<void> =>
      Effect.gen(function* () {
        if (slot.heartbeat !== undefined) yield* Fiber.interrupt(slot.heartbeat)
        yield* control(slot.client, "shutdown").pipe(Effect.timeout(SHUTDOWN_TIMEOUT), Effect.ignore)
        yield* slot.link.close
        yield* Fiber.interrupt(slot.server)
      })

    const stopAll = (): Effect.Effect<void> =>
      Effect.suspend(() => {
        const all = slots.filter((slot) => slot !== undefined)
        if (spare !== undefined) all.push(spare)
        spare = undefined
        return Effect.forEach(all, stopSlot, { concurrency: "unbounded", discard: true })
      })

    /** Starts a spare in the background, unless one is ready or the pool is done. */
    let refilling = false
    const refillSpare: Effect.Effect<void> = Effect.suspend(() => {
      if (health.spare === false || spare !== undefined || refilling || halted || closing) return Effect.void
      refilling = true
      return start(-1).pipe(
        Effect.flatMap((slot) =>
          Effect.suspend(() => {
            refilling = false
            if (closing || halted) return slot.link.close
            spare = slot
            return emit({ _tag: "SpareReady", corps, at: Date.now(), env: options.envName })
          })
        ),
        Effect.catch((error) =>
          Effect.sync(() => {
            refilling = false
          }).pipe(
            Effect.andThen(Effect.logWarning(`effect-corps: spare of Env ${options.envName} did not start`, error)),
            Effect.andThen(Effect.sleep(SPARE_RETRY_DELAY)),
            Effect.andThen(Effect.suspend(() => refillSpare))
          )
        ),
        Effect.forkIn(scope),
        Effect.asVoid
      )
    })

    /** A ready Env for slot `index`: the spare when it answers its adoption, else a fresh start. */
    const takeOver = (index: number): Effect.Effect<Slot, EnvStartError> =>
      Effect.suspend(() => {
        const ready = spare
        spare = undefined
        const fresh = start(index)
        if (ready === undefined || ready.link.closeReason !== undefined) return fresh
        return control(ready.client, "adopt", index).pipe(
          Effect.as(ready),
          Effect.catchTag("CallLost", () => fresh)
        )
      })

    /**
     * Stops or fails the whole pool at once (calls answered from now on get
     * `error`); its Envs are then stopped by the supervisor. Synchronous, so
     * that no call slips through between the decision and the event.
     */
    const haltNow = (error: (request: Wire.Call) => unknown, reason: string): void => {
      if (halted) return
      halted = true
      for (let index = 0; index < clients.length; index++) {
        clients[index] = refusing(`${options.envName}#${index}`, error, reason)
      }
      Queue.offerUnsafe(commands, { _tag: "stop" })
    }

    const failPool = (error: CorpsFailed) => haltNow(() => error, `failed: ${error.reason}`)

    /** Applies an exhausted policy's outcome, then reports it. */
    const exhausted = (outcome: Supervision.Outcome, detail: string, worker?: string) =>
      Effect.suspend(() => {
        if (outcome === "escalate") {
          // The Corps fails as a whole (every pool of it, this one included), then its parent decides.
          corpsSupervisor.escalate(new CorpsFailed({ corps, env: options.envName, reason: detail }))
        } else if (worker === undefined) {
          haltNow(
            (request) => new WorkerStopped({ worker: request.worker, env: options.envName, reason: detail }),
            `stopped: ${detail}`
          )
        } else {
          stopped.set(worker, new WorkerStopped({ worker, env: options.envName, reason: detail }))
        }
        const watcher = watchers.find((w) => w.worker.name === worker)
        return emit({
          _tag: "SupervisionExhausted",
          corps,
          at: Date.now(),
          env: options.envName,
          ...(worker === undefined ? {} : { worker }),
          outcome,
          restarts: watcher === undefined ? history.length : watcher.history.length,
          withinMillis: watcher === undefined ? policy.withinMillis : watcher.policy.withinMillis,
          detail
        })
      })

    /** Counts a loss of slot `index` against the limits of the Workers it hosts. */
    const countAgainstWorkers = (index: number, at: number, detail: string) =>
      Effect.forEach(
        watchers,
        (watcher) => {
          if (watcher.done || !watcher.worker.hosts.includes(index)) return Effect.void
          const counted = Supervision.recordRestart(watcher.history, at, watcher.policy)
          watcher.history = counted.history
          if (!counted.exhausted) return Effect.void
          watcher.done = true
          return exhausted(
            watcher.policy.outcome,
            `more than ${watcher.policy.maxRestarts} restarts within ${watcher.policy.withinMillis} ms; last: ${detail}`,
            watcher.worker.name
          )
        },
        { discard: true }
      )

    /**
     * Replaces the lost Env of slot `index` under the policy: counts the
     * loss, waits its backoff, takes the spare over (or starts afresh); a
     * failed start is one more loss, until the limit is passed.
     */
    const recover = (index: number, first: typeof CorpsEvent.EnvCrashed.Type) =>
      Effect.gen(function* () {
        let crash = first
        while (!halted && !closing) {
          yield* emit(crash)
          const at = yield* now
          yield* countAgainstWorkers(index, at, crash.detail)
          const counted = Supervision.recordRestart(history, at, policy)
          history = counted.history
          if (halted) return
          if (counted.exhausted) {
            return yield* exhausted(
              policy.outcome,
              `more than ${policy.maxRestarts} restarts within ${policy.withinMillis} ms; last: ${options.envName}#${index} ${crash.reason}: ${crash.detail}`
            )
          }
          const next = yield* backoffOf(index).next(at)
          if (next === undefined) {
            return yield* exhausted(
              policy.outcome,
              `its restart schedule ended; last: ${options.envName}#${index} ${crash.reason}: ${crash.detail}`
            )
          }
          yield* emit({
            _tag: "EnvRestarting",
            corps,
            at: Date.now(),
            env: options.envName,
            index,
            attempt: next.attempt,
            delayMillis: next.delayMillis
          })
          if (next.delayMillis > 0) yield* Effect.sleep(next.delayMillis)
          const started = yield* Effect.result(takeOver(index))
          if (started._tag === "Success") {
            // The Corps may have begun closing, or failed, while this Env started: stop it rather than leak it.
            if (closing || halted) return yield* stopSlot(started.success)
            yield* install(started.success, index)
            yield* emit({
              _tag: "EnvStarted",
              corps,
              at: Date.now(),
              env: options.envName,
              index,
              attempt: next.attempt
            })
            yield* refillSpare
            return
          }
          crash = {
            _tag: "EnvCrashed",
            corps,
            at: Date.now(),
            env: options.envName,
            index,
            reason: "crashed",
            detail: `could not start again: ${started.failure.reason}`
          }
        }
      })

    /** A lost Env: its calls already failed with CallLost; diagnose it and replace it. */
    const lost = (slot: Slot) =>
      Effect.gen(function* () {
        if (slot.heartbeat !== undefined) yield* Fiber.interrupt(slot.heartbeat)
        yield* Fiber.interrupt(slot.server)
        if (slot.index === -1) {
          // The spare died idle: start another later, counted against nothing (it served no call).
          if (spare === slot) spare = undefined
          yield* Effect.sleep(SPARE_RETRY_DELAY)
          return yield* refillSpare
        }
        // A replaced or removed Env's late close notice.
        if (slots[slot.index] !== slot) return
        // Lost while draining: it was leaving anyway, so it is removed rather than restarted.
        if (slot.draining) {
          forget(slot)
          return yield* emit({
            _tag: "EnvRemoved",
            corps,
            at: Date.now(),
            env: options.envName,
            index: slot.index,
            reason: `lost while draining: ${slot.link.closeReason ?? "lost"}`
          })
        }
        // A process' last words (an out-of-memory message) may still be in its stderr pipe.
        yield* Effect.promise(() => slot.spawned.settled).pipe(Effect.timeout("1 second"), Effect.ignore)
        const reason = slot.link.closeReason ?? "lost"
        yield* recover(slot.index, {
          _tag: "EnvCrashed",
          corps,
          at: Date.now(),
          env: options.envName,
          index: slot.index,
          reason: classify(slot.spawned.diagnosis, reason),
          detail: reason
        })
      })

    const started = yield* Effect.forEach(
      Array.from({ length: options.size }, (_, i) => i),
      start,
      { concurrency: "unbounded" }
    ).pipe(
      Effect.onError(() =>
        Effect.suspend(() =>
          Effect.forEach(
            slots.filter((slot) => slot !== undefined),
            stopSlot,
            { concurrency: "unbounded", discard: true }
          )
        )
      )
    )
    for (const [index, slot] of started.entries()) {
      yield* install(slot, index)
      yield* emit({ _tag: "EnvStarted", corps, at: Date.now(), env: options.envName, index, attempt: 0 })
    }

    // Restarts are children of the supervisor: interrupting it interrupts them.
    const supervisor = yield* Effect.forkIn(
      Effect.forever(
        Effect.flatMap(Queue.take(commands), (command) =>
          command._tag === "lost" ? Effect.forkChild(lost(command.slot)) : stopAll()
        )
      ),
      scope
    )
    const unregister = corpsSupervisor.register(failPool)
    yield* Scope.addFinalizer(
      outer,
      Effect.suspend(() => {
        closing = true
        unregister()
        return Effect.andThen(Fiber.interrupt(supervisor), stopAll())
      })
    )
    yield* refillSpare

    /** Frees the slot of a removed Env; listeners drop what they routed to it first. */
    function forget(slot: Slot): void {
      for (const listener of removedListeners) listener(slot.index)
      slot.draining = false
      delete slots[slot.index]
      lastLoads[slot.index] = undefined
      while (slots.length > 0 && slots[slots.length - 1] === undefined && !reserved.has(slots.length - 1))
        slots.length--
    }

    const setActive = (indexes: Iterable<number>) => {
      active = [...indexes].sort((a, b) => a - b)
    }

    /** The lowest slot index neither in use nor being started. */
    const freeIndex = (): number => {
      let index = 0
      while (slots[index] !== undefined || reserved.has(index)) index++
      return index
    }

    const grow = (count: number): Effect.Effect<Grown> =>
      Effect.gen(function* () {
        if (halted || closing || count <= 0) return { added: 0, failures: [] }
        let added = 0
        // A draining slot is still running: putting it back costs nothing.
        for (const slot of slots) {
          if (added === count) break
          if (slot?.draining) {
            slot.draining = false
            setActive([...active, slot.index])
            added++
          }
        }
        const indexes: Array<number> = []
        for (let k = added; k < count; k++) {
          const index = freeIndex()
          reserved.add(index)
          indexes.push(index)
        }
        const started = yield* Effect.forEach(
          indexes,
          (index) =>
            takeOver(index).pipe(
              Effect.flatMap((slot) =>
                Effect.gen(function* () {
                  reserved.delete(index)
                  if (closing || halted) {
                    yield* stopSlot(slot)
                    return undefined
                  }
                  yield* install(slot, index)
                  setActive([...active, index])
                  yield* emit({ _tag: "EnvStarted", corps, at: Date.now(), env: options.envName, index, attempt: 0 })
                  return index
                })
              ),
              Effect.catch((error) =>
                Effect.sync(() => {
                  reserved.delete(index)
                  return error
                })
              )
            ),
          { concurrency: "unbounded" }
        )
        yield* refillSpare
        return {
          added: added + started.filter((outcome) => typeof outcome === "number").length,
          failures: started.filter((outcome) => outcome instanceof EnvStartError)
        }
      })

    const remove = (index: number): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        const slot = slots[index]
        if (slot === undefined || !slot.draining) return Effect.succeed(false)
        // Synchronously gone: no call is routed to it from here on, and its close is not a crash.
        forget(slot)
        return stopSlot(slot).pipe(
          Effect.andThen(
            emit({ _tag: "EnvRemoved", corps, at: Date.now(), env: options.envName, index, reason: "drained" })
          ),
          Effect.as(true)
        )
      })

    let turn = 0
    const client = (index: number): Client => clients[index]!
    /** A control call to the live Env of slot `index`; `undefined` when there is none. */
    const controlOf = (index: number, method: string): Effect.Effect<unknown> =>
      Effect.suspend(() => {
        const slot = slots[index]
        if (slot === undefined || halted || slot.link.closeReason !== undefined) return Effect.undefined
        return control(slot.client, method).pipe(Effect.catchTag("CallLost", () => Effect.undefined))
      })
    return {
      get closing() {
        return closing
      },
      get halted() {
        return halted
      },
      stoppedError: (worker) => stopped.get(worker),
      client,
      picker: (hosts) => () => leastLoaded(client, hosts, turn++ % hosts.length),
      load: (index) =>
        Effect.suspend(() => {
          const slot = slots[index]
          if (slot === undefined || halted || slot.link.closeReason !== undefined) return Effect.undefined
          return control(slot.client, "load").pipe(
            Effect.map((sample) => {
              const load = sample as EnvLoad | undefined
              lastLoads[index] = load
              return load
            }),
            Effect.catchTag("CallLost", () => Effect.undefined)
          )
        }),
      lastLoad: (index) => (slots[index] === undefined ? undefined : lastLoads[index]),
      get active() {
        return active
      },
      activePicker: () => () => leastLoaded(client, active, turn++ % active.length),
      grow,
      drain: (index) => {
        const slot = slots[index]
        // A lost slot is being restarted by its supervisor: it is not drained under it.
        if (slot === undefined || slot.draining || slot.link.closeReason !== undefined) return
        slot.draining = true
        setActive(active.filter((i) => i !== index))
      },
      draining: (index) => slots[index]?.draining === true,
      remove,
      onRemoved: (listener) => {
        removedListeners.push(listener)
      },
      metrics: (index) => controlOf(index, "metrics")
    }
  })

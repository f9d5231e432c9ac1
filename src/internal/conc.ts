/**
 * The FastPath for stateful Workers (Concs): one instance per key, calls
 * handled one at a time in arrival order.
 *
 * An idle instance costs no fiber and no hand-off: the call runs in the
 * caller's own fiber under a plain `busy` flag. Only when the instance is busy
 * does a caller queue, and a release hands the flag straight to the next
 * waiter. Waiters are resumed in a loop, never recursively: resuming an
 * `Effect.callback` runs its fiber at once, so a recursive hand-off would
 * overflow the stack at a few hundred queued synchronous callers, and the
 * symptom is a silent hang (test/internal/conc.test.ts queues 20,000).
 *
 * Passivation (`passivateAfter`, and draining an Env) retires an idle
 * instance: under its flag, so no call runs against a half-closed instance.
 * A retired instance leaves the map and forwards every call it still gets
 * (from a handle made before, or queued while it closed) to the key's
 * current instance, built afresh on its first call.
 */
import { Cause, Effect, Effectable, Exit, Scope, Stream } from "effect"
import { CorpsClosed, MailboxFull, UnknownMethod, WorkerDefect } from "../CorpsError.ts"
import { handlerStream, localStream } from "./func.ts"
import {
  type AnyHandler,
  callPrototype,
  type DefectMapper,
  defectError,
  defectMapper,
  invokeWith,
  isEffectResult,
  settle,
  startFailure
} from "./invoke.ts"

/** How a Conc instance's mailbox behaves when `capacity` calls are already waiting. */
export interface MailboxPolicy {
  readonly capacity: number
  readonly onFull: "suspend" | "fail"
}

/** What every instance of one Conc Worker shares: its name, builder and policy. */
export interface ConcShared {
  readonly worker: string
  /** Builds one instance's handlers; finalizers go to `scope`, the instance's own. */
  readonly build: (key: string, scope: Scope.Scope) => Effect.Effect<Record<string, AnyHandler>, unknown>
  readonly mailbox: MailboxPolicy
  /** Methods that opted out of the mailbox and run concurrently with others. */
  readonly concurrent: ReadonlySet<string>
  /** The Corps' id, and whether it has been closed (no instance is built after that). */
  readonly corps: string
  closed: boolean
  /**
   * `onDefect: "restart"`: called after an instance's handler died and its
   * scope was closed (reports `InstanceRestarted`); absent under `resume`.
   */
  readonly onRestart?: ((key: string, defect: unknown) => Effect.Effect<void>) | undefined
  /**
   * Whether concurrent calls and open streams are counted per instance, so
   * that passivation never closes an instance under them. On when the Conc
   * may be passivated (`passivateAfter`, or it lives in a thread or process
   * Env, which a pool may drain); off, those calls cost nothing more.
   */
  readonly tracked?: boolean | undefined
  /**
   * Called after an instance was passivated and its finalizers ran (reports
   * `InstancePassivated`); `idleMillis` is the least time it was idle, when a
   * sweep (not a drain) retired it.
   */
  readonly onPassivate?: ((key: string, idleMillis: number | undefined) => Effect.Effect<void>) | undefined
}

/** FIFO queue with a moving head: O(1) at both ends, no `shift`. */
class WaitQueue {
  items: Array<ExclusiveRun> = []
  head = 0
  /** Waiters still waiting (cancelled ones excluded). */
  length = 0
  push(waiter: ExclusiveRun): void {
    this.items.push(waiter)
    this.length++
  }
  /** A queued waiter's caller was interrupted: it no longer counts. */
  cancel(waiter: ExclusiveRun): void {
    waiter.cancelled = true
    this.length--
  }
  /** The next live waiter, or undefined; skips those whose caller was interrupted. */
  next(): ExclusiveRun | undefined {
    while (this.head < this.items.length) {
      const waiter = this.items[this.head]!
      this.items[this.head++] = undefined as any
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head)
        this.head = 0
      }
      if (!waiter.cancelled) {
        this.length--
        return waiter
      }
    }
    return undefined
  }
}

/**
 * One call, as a description: each run takes its own step (and, when it needs
 * the flag, its own {@link ExclusiveRun}), so one Effect run twice is two calls.
 */
interface ConcCall extends Effect.Effect<unknown, unknown> {
  readonly instance: ConcInstance
  readonly method: string
  readonly payload: unknown
  step(): Effect.Effect<unknown, unknown>
}

const ConcCallProto = callPrototype<ConcCall>("effect-corps/ConcCall", function () {
  return this.instance.step(this.method, this.payload)
})
const ConcCall = function (this: any, instance: ConcInstance, method: string, payload: unknown) {
  this.instance = instance
  this.method = method
  this.payload = payload
} as unknown as new (
  instance: ConcInstance,
  method: string,
  payload: unknown
) => ConcCall
ConcCall.prototype = ConcCallProto

/**
 * One run of a call that needs the instance's flag: it is both the step that
 * takes the flag (evaluated under an exit hook already registered) and, on
 * contention, the queued waiter a release hands the flag to.
 */
interface ExclusiveRun extends Effect.Effect<unknown, unknown> {
  readonly instance: ConcInstance
  readonly method: string
  /** The handler's Effect when the handler was already called; else the handler is called under the flag. */
  readonly effect: Effect.Effect<unknown, unknown> | undefined
  /** Kept even with `effect`: a retired instance forwards the call, payload and all, to the key's current one. */
  readonly payload: unknown
  owned: boolean
  resume: ((effect: Effect.Effect<void>) => void) | undefined
  cancelled: boolean
}

const ExclusiveRunProto: any = Effectable.Prototype<ExclusiveRun>({
  label: "effect-corps/ConcExclusive",
  evaluate() {
    return this.instance.acquire(this)
  }
})
const ExclusiveRun = function (
  this: any,
  instance: ConcInstance,
  method: string,
  effect: Effect.Effect<unknown, unknown> | undefined,
  payload: unknown
) {
  this.instance = instance
  this.method = method
  this.effect = effect
  this.payload = payload
  this.owned = false
  this.resume = undefined
  this.cancelled = false
} as unknown as new (
  instance: ConcInstance,
  method: string,
  effect: Effect.Effect<unknown, unknown> | undefined,
  payload: unknown
) => ExclusiveRun
ExclusiveRun.prototype = ExclusiveRunProto

const MODE_MAILBOX = 1
const MODE_CONCURRENT = 2
/** A mailbox method of a Conc with `onDefect: "restart"`: always under the flag, so a restart is too. */
const MODE_RESTARTING = 3
/** A concurrent method of a tracked Conc: counted while it runs, so that passivation waits for it. */
const MODE_CONCURRENT_TRACKED = 4

const BUSY = 1
const HANDING_OFF = 2
const RELEASED_DURING_HAND_OFF = 4
/** Passivated: out of the map for good; calls it still gets go to the key's current instance. */
const RETIRED = 8
/**
 * Two bits counting the sweeps an instance survived unused (see
 * {@link SWEEPS_TO_PASSIVATE}): in `flags` rather than a field of their own,
 * since every idle instance pays for each field. A call clears them; the
 * sweeper counts up only instances it finds idle, so they are 0 whenever the
 * instance is busy and `release`'s `flags === BUSY` test still holds.
 */
const SWEEP_UNIT = 16
const SWEEP_MASK = 48

/** The method name of the run a concurrent method's defect takes the flag with (not a call: never forwarded). */
const RESTART_RUN = "~restart"

/**
 * Sweeps an instance survives unused before a sweep retires it. Sweeps come
 * every `passivateAfter / 2`, so an instance retired at its third unused sweep
 * has been idle at least `passivateAfter` (and less than 1.5 times it).
 */
export const SWEEPS_TO_PASSIVATE = 3

/** An instance just retired: whether it had been built, and its scope to close (none: released already). */
interface Retired {
  readonly instance: ConcInstance
  readonly built: boolean
  readonly scope: Scope.Closeable | undefined
}

/** Scopes closed at once by one sweep or drain: enough to overlap slow finalizers, not a fiber per instance. */
const CLOSING_CONCURRENCY = 64

/**
 * The instances one sweep or drain retired: their scopes are closed (in
 * parallel), then each built one is reported. The Effects are made one
 * instance at a time as they run, so a sweep of 100,000 holds no Effect per
 * instance.
 */
class Retirements {
  private readonly retired: Array<Retired> = []
  private readonly idleMillis: number | undefined
  private readonly report: ConcShared["onPassivate"]
  constructor(idleMillis: number | undefined, report: ConcShared["onPassivate"]) {
    this.idleMillis = idleMillis
    this.report = report
  }

  add(retired: Retired | undefined): void {
    if (retired !== undefined && (retired.scope !== undefined || (retired.built && this.report !== undefined))) {
      this.retired.push(retired)
    }
  }

  get run(): Effect.Effect<void> {
    if (this.retired.length === 0) return Effect.void
    return Effect.forEach(this.retired, (retired) => this.finish(retired), {
      concurrency: CLOSING_CONCURRENCY,
      discard: true
    })
  }

  private finish({ instance, built, scope }: Retired): Effect.Effect<void> {
    const report = built && this.report !== undefined ? this.report(instance.key, this.idleMillis) : Effect.void
    if (scope === undefined) return report
    // Uninterruptible: the finalizers run to the end, and the flag is released whatever happens.
    const closing = Effect.uninterruptible(
      Effect.ensuring(
        Scope.close(scope, Exit.void),
        Effect.sync(() => instance.release())
      )
    )
    return Effect.andThen(closing, report)
  }
}

/**
 * One keyed instance. Fields are few and inline, methods live on the
 * prototype: 100,000 idle instances must stay cheap (see bench/).
 */
export class ConcInstance {
  readonly owner: ConcWorker
  readonly key: string
  /** The handlers built for this instance; undefined until built. */
  handlers: Record<string, AnyHandler> | undefined = undefined
  /** Bit flags: BUSY, HANDING_OFF, RELEASED_DURING_HAND_OFF, RETIRED, and the sweep count (SWEEP_MASK). */
  flags = 0
  /** Created on first contention only. */
  queue: WaitQueue | undefined = undefined
  /** Kept only when the builder registered finalizers. */
  scope: Scope.Closeable | undefined = undefined

  constructor(owner: ConcWorker, key: string) {
    this.owner = owner
    this.key = key
  }

  get shared(): ConcShared {
    return this.owner.shared
  }

  /** Calls `method` with `payload`, one call at a time per instance. */
  call(method: string, payload: unknown): Effect.Effect<unknown, unknown> {
    return new ConcCall(this, method, payload)
  }

  /**
   * One run of a call: what the caller's fiber runs next. On an idle, built
   * instance the handler is called at once; a plain value (or an Exit) needs
   * no lock at all — nothing can interleave with synchronous code.
   */
  step(method: string, payload: unknown): Effect.Effect<unknown, unknown> {
    // Used: the sweep count starts again (no clock read on the call path).
    this.flags &= ~SWEEP_MASK
    const mode = this.owner.modeOf(method)
    if (mode !== MODE_MAILBOX) {
      if (mode === MODE_RESTARTING) return this.runExclusive(method, undefined, payload)
      if (this.handlers === undefined) return this.runExclusive(method, undefined, payload)
      const effect =
        mode === MODE_CONCURRENT_TRACKED ? this.runCounted(method, payload) : this.invokeOwned(method, payload)
      return this.owner.shared.onRestart === undefined ? effect : this.restartAfter(effect)
    }
    if ((this.flags & BUSY) === 0 && this.handlers !== undefined) {
      const handler = this.handlers[method]
      if (handler === undefined) return Exit.fail(new UnknownMethod({ worker: this.owner.worker, method }))
      let result: unknown
      try {
        result = handler(payload)
      } catch (defect) {
        return Exit.fail(defectError(this.owner.worker, method, defect))
      }
      if (!isEffectResult(result) || Exit.isExit(result)) return settle(result, this.owner, method)
      return this.runExclusive(method, result, payload)
    }
    return this.runExclusive(method, undefined, payload)
  }

  /**
   * Runs a call under the instance's flag. The exit hook is registered before
   * the flag is taken (the flag is taken by `run`'s own step, under the hook),
   * so an interruption at any point releases exactly what was taken.
   */
  private runExclusive(
    method: string,
    effect: Effect.Effect<unknown, unknown> | undefined,
    payload: unknown
  ): Effect.Effect<unknown, unknown> {
    const run = new ExclusiveRun(this, method, effect, payload)
    // Not `interruptible: true`: an interruptible exit frame is skipped by an interruption.
    return Effect.onExitPrimitive(run, (exit) => {
      if (!run.owned) return undefined
      if (exit._tag === "Failure" && this.owner.shared.onRestart !== undefined) {
        const defect = this.owner.diedIn(exit.cause)
        // Still under the flag: queued calls wait for the old instance's finalizers, then meet a new one.
        if (defect !== undefined)
          return Effect.ensuring(
            this.restart(defect),
            Effect.sync(() => this.release())
          )
      }
      this.release()
      return undefined
    })
  }

  /**
   * `onDefect: "restart"`: retires the instance after one of its handlers
   * died. Runs under the flag: closes the instance's scope (its finalizers),
   * then reports; the next call builds a fresh instance.
   */
  private restart(defect: WorkerDefect): Effect.Effect<void> {
    const scope = this.scope
    this.scope = undefined
    this.handlers = undefined
    const closed = scope === undefined ? Effect.void : Scope.close(scope, Exit.die(defect.defect))
    return Effect.andThen(closed, this.owner.shared.onRestart!(this.key, defect.defect))
  }

  /** A concurrent method (no flag held) whose handler died: takes the flag to restart, then fails as it did. */
  private restartAfter(effect: Effect.Effect<unknown, unknown>): Effect.Effect<unknown, unknown> {
    return Effect.catchCause(effect, (cause) => {
      const defect = this.owner.diedIn(cause)
      if (defect === undefined) return Effect.failCause(cause)
      const restart = new ExclusiveRun(this, RESTART_RUN, Effect.void, undefined)
      return Effect.andThen(
        Effect.onExitPrimitive(restart, () => {
          if (!restart.owned) return undefined
          // Another call may have restarted it already: only the built instance is retired.
          return Effect.ensuring(
            this.handlers === undefined ? Effect.void : this.restart(defect),
            Effect.sync(() => this.release())
          )
        }),
        Effect.failCause(cause)
      )
    })
  }

  /** `run`'s step: takes the flag, or queues `run` until a release hands it over. */
  acquire(run: ExclusiveRun): Effect.Effect<unknown, unknown> {
    if ((this.flags & BUSY) === 0) {
      this.flags |= BUSY
      run.owned = true
      return this.runOwned(run)
    }
    const mailbox = this.owner.shared.mailbox
    const queue = (this.queue ??= new WaitQueue())
    if (queue.length >= mailbox.capacity && mailbox.onFull === "fail") {
      return Exit.fail(new MailboxFull({ worker: this.owner.worker, key: this.key, capacity: mailbox.capacity }))
    }
    queue.push(run)
    return Effect.flatMap(
      Effect.callback<void>((resume) => {
        run.resume = resume
        // Interrupted while queued: leave the queue (a release skips it).
        return Effect.sync(() => queue.cancel(run))
      }),
      () => this.runOwned(run)
    )
  }

  private runOwned(run: ExclusiveRun): Effect.Effect<unknown, unknown> {
    // Passivated while this call waited (or before it started): the key's current instance takes it. The old
    // flag stays held until it ends, so the calls queued here reach the new instance in their order.
    if ((this.flags & RETIRED) !== 0 && run.method !== RESTART_RUN) {
      return this.owner.instance(this.key).call(run.method, run.payload)
    }
    // Called already, and known to be an Effect that is not an Exit.
    if (run.effect !== undefined) return Effect.catchCause(run.effect, this.owner.mapperOf(run.method))
    if (this.handlers === undefined) {
      if (this.owner.shared.closed) return Exit.fail(new CorpsClosed({ corps: this.owner.shared.corps }))
      return this.buildThenInvoke(run)
    }
    return this.invokeOwned(run.method, run.payload)
  }

  /**
   * A concurrent method of a tracked Conc: counted in its worker's `active` while it runs.
   * The count is taken by a step run under the exit hook, so an interruption
   * at any point undoes exactly what was counted.
   */
  private runCounted(method: string, payload: unknown): Effect.Effect<unknown, unknown> {
    let counted = false
    return Effect.onExitPrimitive(
      Effect.suspend(() => {
        // Passivated between the step and now: start over on the key's current instance.
        if (this.handlers === undefined) return this.call(method, payload)
        counted = true
        this.owner.countActive(this, 1)
        return this.invokeOwned(method, payload)
      }),
      () => {
        if (counted) this.owner.countActive(this, -1)
        return undefined
      }
    )
  }

  private invokeOwned(method: string, payload: unknown): Effect.Effect<unknown, unknown> {
    const handler = this.handlers![method]
    if (handler === undefined) return Exit.fail(new UnknownMethod({ worker: this.owner.worker, method }))
    return invokeWith(handler, payload, this.owner, method)
  }

  /**
   * Builds the instance's handlers in its own scope (the scope is kept only if
   * something was registered in it), then makes `run`'s call.
   */
  private buildThenInvoke(run: ExclusiveRun): Effect.Effect<unknown, unknown> {
    const scope = Scope.makeUnsafe()
    // An interrupted build skips the failure branch below: close its scope here, or its finalizers never run.
    const build = Effect.onInterrupt(this.owner.shared.build(this.key, scope), () => Scope.close(scope, Exit.void))
    return Effect.matchCauseEffect(build, {
      onSuccess: (handlers) => {
        this.handlers = handlers
        if (scope.state._tag !== "Empty") this.scope = scope
        return this.invokeOwned(run.method, run.payload)
      },
      onFailure: (cause) =>
        // The instance stays unbuilt: the next call that gets it tries again.
        Cause.hasInterruptsOnly(cause)
          ? Exit.failCause(cause)
          : Effect.andThen(
              Scope.close(scope, Exit.failCause(cause)),
              Exit.fail(startFailure(this.owner.worker, this.key, cause))
            )
    })
  }

  /** Hands the flag to the next live waiter, or clears it. Loops rather than recursing. */
  release(): void {
    // Nobody waiting, no hand-off under way: just clear the flag.
    if (this.flags === BUSY && (this.queue === undefined || this.queue.length === 0)) {
      this.flags = 0
      return
    }
    if ((this.flags & HANDING_OFF) !== 0) {
      this.flags |= RELEASED_DURING_HAND_OFF
      return
    }
    this.flags |= HANDING_OFF
    try {
      while (true) {
        const next = this.queue?.next()
        if (next === undefined) {
          this.flags &= ~BUSY
          return
        }
        this.flags &= ~RELEASED_DURING_HAND_OFF
        next.owned = true
        next.resume!(Exit.void)
        // The resumed call may have completed synchronously and released in
        // turn; if so, keep handing off here instead of recursing.
        if ((this.flags & RELEASED_DURING_HAND_OFF) === 0) return
      }
    } finally {
      this.flags &= ~(HANDING_OFF | RELEASED_DURING_HAND_OFF)
    }
  }

  /**
   * Calls a streaming method: the stream is created under the mailbox, its
   * elements flow outside it.
   */
  stream(method: string, payload: unknown): Stream.Stream<unknown, unknown> {
    if (this.owner.shared.tracked === true)
      return localStream(this.shared.worker, method, () => this.countedStream(method, payload))
    return localStream(this.shared.worker, method, () =>
      Stream.unwrap(
        Effect.map(this.call(method, payload) as Effect.Effect<Stream.Stream<unknown, unknown>, unknown>, (stream) =>
          handlerStream(this.shared.worker, method, stream)
        )
      )
    )
  }

  /**
   * A stream of a tracked Conc: the instance that serves it counts it in
   * it as active from before its call until the stream ends, so it is never
   * passivated under an open stream.
   */
  private countedStream(method: string, payload: unknown): Stream.Stream<unknown, unknown> {
    const open = Effect.acquireRelease(
      Effect.sync(() => {
        const live = this.current()
        this.owner.countActive(live, 1)
        return live
      }),
      (live) => Effect.sync(() => this.owner.countActive(live, -1))
    )
    return Stream.unwrap(
      Effect.flatMap(
        open,
        (live) => live.call(method, payload) as Effect.Effect<Stream.Stream<unknown, unknown>, unknown>
      )
    )
  }

  /** This instance, or the key's current one once this one is retired. */
  current(): ConcInstance {
    return (this.flags & RETIRED) === 0 ? this : this.owner.instance(this.key)
  }

  /** Whether nothing runs on it or waits for it: no call, no queued call, no concurrent call, no open stream. */
  get idle(): boolean {
    return (
      (this.flags & ~SWEEP_MASK) === 0 &&
      (this.queue === undefined || this.queue.length === 0) &&
      (this.owner.active === undefined || !this.owner.active.has(this))
    )
  }

  /** Whether it holds handlers, or is being built or called (what draining an Env waits for). */
  get live(): boolean {
    return this.handlers !== undefined || !this.idle
  }

  /**
   * Retires the instance if it is idle now: takes its flag for good (calls
   * that arrive meanwhile queue, then go to the key's next instance) and
   * leaves the map. Without a scope it is released at once; with one, the
   * flag is released once the scope is closed ({@link Retirements}).
   * `undefined` when the instance is busy and was left alone.
   */
  retireIfIdle(): Retired | undefined {
    if (!this.idle) return undefined
    this.flags = BUSY | RETIRED
    if (this.owner.instances.get(this.key) === this) this.owner.instances.delete(this.key)
    const built = this.handlers !== undefined
    const scope = this.scope
    this.scope = undefined
    this.handlers = undefined
    // Nothing to close: free at once (calls that meet it go on to the key's next instance).
    if (scope === undefined) this.release()
    return { instance: this, built, scope }
  }

  /** Calls waiting for this instance (monitoring). */
  get pending(): number {
    return this.queue?.length ?? 0
  }

  /** Runs the instance's finalizers (Corps shutdown). */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const scope = this.scope
    this.scope = undefined
    this.handlers = undefined
    return scope === undefined ? Effect.void : Scope.close(scope, exit)
  }
}

/** All instances of one Conc Worker, created on first use. */
export class ConcWorker {
  readonly shared: ConcShared
  readonly instances = new Map<string, ConcInstance>()

  constructor(shared: ConcShared) {
    this.shared = shared
  }

  /**
   * Concurrent calls running and streams open, per instance that has any
   * (tracked Concs only): beside the instances rather than a field of each,
   * so idle instances pay nothing for it.
   */
  active: Map<ConcInstance, number> | undefined = undefined

  /** Counts one concurrent call or stream of `instance` in (+1) or out (-1). */
  countActive(instance: ConcInstance, delta: 1 | -1): void {
    const active = (this.active ??= new Map())
    const count = (active.get(instance) ?? 0) + delta
    if (count === 0) active.delete(instance)
    else active.set(instance, count)
  }

  /** The worker's name. */
  get worker(): string {
    return this.shared.worker
  }

  /** Whether a method goes through the mailbox (made once per method). */
  private readonly modes: Record<string, number> = {}
  modeOf(method: string): number {
    return (this.modes[method] ??= this.shared.concurrent.has(method)
      ? this.shared.tracked === true
        ? MODE_CONCURRENT_TRACKED
        : MODE_CONCURRENT
      : this.shared.onRestart === undefined
        ? MODE_MAILBOX
        : MODE_RESTARTING)
  }

  /** One defect mapper per method, made once. */
  private readonly mappers: Record<string, DefectMapper> = {}
  mapperOf(method: string): DefectMapper {
    return (this.mappers[method] ??=
      this.shared.onRestart === undefined ? defectMapper(this.shared.worker, method) : this.restartingMapper(method))
  }

  /**
   * Under `onDefect: "restart"`, the WorkerDefects made from a handler's die
   * (not those a handler fails with as a typed error, say from a Worker it
   * called): only these restart the instance.
   */
  private readonly died = new WeakSet<object>()

  private restartingMapper(method: string): DefectMapper {
    const map = defectMapper(this.shared.worker, method)
    return (cause) => {
      const mapped = map(cause)
      if (Exit.isExit(mapped) && mapped._tag === "Failure") {
        const error = Cause.findErrorOption(mapped.cause)
        if (error._tag === "Some" && error.value instanceof WorkerDefect && mapped.cause !== cause) {
          this.died.add(error.value)
        }
      }
      return mapped
    }
  }

  /** The WorkerDefect in `cause` made from a handler's die, if any (restart mode). */
  diedIn(cause: Cause.Cause<unknown>): WorkerDefect | undefined {
    const error = Cause.findErrorOption(cause)
    return error._tag === "Some" && error.value instanceof WorkerDefect && this.died.has(error.value)
      ? error.value
      : undefined
  }

  /** The instance for `key`, created (not yet built) on first use. */
  instance(key: string): ConcInstance {
    let instance = this.instances.get(key)
    if (instance === undefined) {
      instance = new ConcInstance(this, key)
      this.instances.set(key, instance)
    }
    return instance
  }

  /**
   * Passivates the instance of `key` if it is idle now: its finalizers run
   * (its Scope closes with a normal exit), it leaves {@link instances}, and
   * the next call to the key builds a fresh one (a persisted Conc resumes
   * from its store). Completes once its finalizers have run.
   *
   * Answers `true` when no instance of `key` is live afterwards: it was idle
   * and is now closed, or there was none (or only an unbuilt one). Answers
   * `false` when the instance is busy — a call running or being built, calls
   * queued, a concurrent method running or a stream open (the last two are
   * seen only when the Conc is `tracked`) — and leaves it untouched.
   */
  passivate(key: string): Effect.Effect<boolean> {
    return Effect.suspend(() => {
      const instance = this.instances.get(key)
      if (instance === undefined) return Effect.succeed(true)
      const retired = instance.retireIfIdle()
      if (retired === undefined) return Effect.succeed(false)
      const batch = new Retirements(undefined, this.shared.onPassivate)
      batch.add(retired)
      return Effect.as(batch.run, true)
    })
  }

  /**
   * Passivates every instance idle now (see {@link passivate}), their
   * finalizers in parallel; answers the keys still live once they have run:
   * the busy ones, and any built meanwhile by new calls. An Env being
   * drained calls it until the answer is empty.
   */
  passivateIdle(): Effect.Effect<ReadonlyArray<string>> {
    return Effect.suspend(() => {
      const batch = new Retirements(undefined, this.shared.onPassivate)
      for (const instance of this.instances.values()) batch.add(instance.retireIfIdle())
      return Effect.andThen(
        batch.run,
        Effect.sync(() => this.liveKeys())
      )
    })
  }

  /** The keys whose instance is built, being built or busy now. */
  liveKeys(): ReadonlyArray<string> {
    const keys: Array<string> = []
    for (const [key, instance] of this.instances) if (instance.live) keys.push(key)
    return keys
  }

  /**
   * One sweep of the passivation clock: a busy instance, or one called since
   * the last sweep, starts counting again; one unused for
   * {@link SWEEPS_TO_PASSIVATE} sweeps in a row is retired (reported with
   * `idleMillis`, the least time it was idle). Idle shells (never built) go
   * too, silently. Completes once the retired ones' finalizers ran.
   */
  sweep(idleMillis: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.shared.closed) return Effect.void
      const batch = new Retirements(idleMillis, this.shared.onPassivate)
      for (const instance of this.instances.values()) {
        if (!instance.idle) {
          instance.flags &= ~SWEEP_MASK
          continue
        }
        if (instance.flags < (SWEEPS_TO_PASSIVATE - 1) * SWEEP_UNIT) {
          instance.flags += SWEEP_UNIT
          continue
        }
        batch.add(instance.retireIfIdle())
      }
      return batch.run
    })
  }

  /** Closes every instance's scope, in parallel. */
  /** Live instances (built, not closed) and the calls waiting in their mailboxes (monitoring). */
  gauges(): { readonly instances: number; readonly mailbox: number } {
    let instances = 0
    let mailbox = 0
    for (const instance of this.instances.values()) {
      if (instance.handlers !== undefined) instances++
      mailbox += instance.pending
    }
    return { instances, mailbox }
  }

  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    this.shared.closed = true
    const instances = [...this.instances.values()]
    this.instances.clear()
    return Effect.forEach(instances, (instance) => instance.close(exit), { concurrency: "unbounded", discard: true })
  }
}

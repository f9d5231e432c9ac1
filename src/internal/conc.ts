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
 */
import { Cause, Effect, Effectable, Exit, Scope, Stream } from "effect"
import { CorpsClosed, MailboxFull, UnknownMethod, WorkerDefect } from "../CorpsError.ts"
import { localStream } from "./func.ts"
import {
  type AnyHandler,
  callPrototype,
  type DefectMapper,
  defectError,
  defectMapper,
  invokeWith,
  isEffectResult,
  settle
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

const BUSY = 1
const HANDING_OFF = 2
const RELEASED_DURING_HAND_OFF = 4

/**
 * One keyed instance. Fields are few and inline, methods live on the
 * prototype: 100,000 idle instances must stay cheap (see bench/).
 */
export class ConcInstance {
  readonly owner: ConcWorker
  readonly key: string
  /** The handlers built for this instance; undefined until built. */
  handlers: Record<string, AnyHandler> | undefined = undefined
  /** Bit flags: BUSY, HANDING_OFF, RELEASED_DURING_HAND_OFF. */
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
    const mode = this.owner.modeOf(method)
    if (mode !== MODE_MAILBOX) {
      if (mode === MODE_RESTARTING) return this.runExclusive(method, undefined, payload)
      if (this.handlers === undefined) return this.runExclusive(method, undefined, payload)
      const effect = this.invokeOwned(method, payload)
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
      return this.runExclusive(method, result, undefined)
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
      const restart = new ExclusiveRun(this, "~restart", Effect.void, undefined)
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
    // Called already, and known to be an Effect that is not an Exit.
    if (run.effect !== undefined) return Effect.catchCause(run.effect, this.owner.mapperOf(run.method))
    if (this.handlers === undefined) {
      if (this.owner.shared.closed) return Exit.fail(new CorpsClosed({ corps: this.owner.shared.corps }))
      return this.buildThenInvoke(run)
    }
    return this.invokeOwned(run.method, run.payload)
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
        Effect.andThen(
          Scope.close(scope, Exit.failCause(cause)),
          Exit.fail(defectError(this.owner.worker, run.method, Cause.squash(cause)))
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
    return localStream(this.shared.worker, method, () =>
      Stream.unwrap(this.call(method, payload) as Effect.Effect<Stream.Stream<unknown, unknown>, unknown>)
    )
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

  /** The worker's name. */
  get worker(): string {
    return this.shared.worker
  }

  /** Whether a method goes through the mailbox (made once per method). */
  private readonly modes: Record<string, number> = {}
  modeOf(method: string): number {
    return (this.modes[method] ??= this.shared.concurrent.has(method)
      ? MODE_CONCURRENT
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

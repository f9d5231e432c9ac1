/**
 * The FastPath for stateful Workers (Concs): one instance per key, calls
 * handled one at a time in arrival order.
 *
 * An idle instance costs no fiber and no hand-off: the call runs in the
 * caller's own fiber under a plain `busy` flag. Only when the instance is busy
 * does a caller queue, and a release hands the flag straight to the next
 * waiter. Waiters are resumed in a loop, never recursively: resuming a fiber
 * runs it at once, and a recursive hand-off overflows the stack at a few
 * hundred queued synchronous callers — silently (see EFFECT4-NOTES).
 */
import { Cause, Effect, Exit, Scope, Stream } from "effect"
import { CorpsClosed, MailboxFull, UnknownMethod } from "../CorpsError.ts"
import { localStream } from "./func.ts"
import { type AnyHandler, catchDefects, defectError } from "./invoke.ts"

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
}

/** One queued call: resumed by a release that hands it the instance. */
class Waiter {
  owned = false
  resume: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  cancelled = false
}

/** FIFO queue with a moving head: O(1) at both ends, no `shift`. */
class WaitQueue {
  items: Array<Waiter> = []
  head = 0
  /** Waiters still waiting (cancelled ones excluded). */
  length = 0
  push(waiter: Waiter): void {
    this.items.push(waiter)
    this.length++
  }
  /** A queued waiter's caller was interrupted: it no longer counts. */
  cancel(waiter: Waiter): void {
    waiter.cancelled = true
    this.length--
  }
  /** The next live waiter, or undefined; skips those whose caller was interrupted. */
  next(): Waiter | undefined {
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

const BUSY = 1
const HANDING_OFF = 2
const RELEASED_DURING_HAND_OFF = 4

/**
 * One keyed instance. Fields are few and inline, methods live on the
 * prototype: 100,000 idle instances must stay cheap (see bench/).
 */
export class ConcInstance {
  readonly shared: ConcShared
  readonly key: string
  /** The handlers built for this instance; undefined until built. */
  handlers: Record<string, AnyHandler> | undefined = undefined
  /** Bit flags: BUSY, HANDING_OFF, RELEASED_DURING_HAND_OFF. */
  flags = 0
  /** Created on first contention only. */
  queue: WaitQueue | undefined = undefined
  /** Kept only when the builder registered finalizers. */
  scope: Scope.Closeable | undefined = undefined

  constructor(shared: ConcShared, key: string) {
    this.shared = shared
    this.key = key
  }

  /** Calls `method` with `payload`, one call at a time per instance. */
  call(method: string, payload: unknown): Effect.Effect<unknown, unknown> {
    if (this.shared.concurrent.has(method)) return this.callConcurrent(method, payload)
    return Effect.withFiber(() => {
      if ((this.flags & BUSY) === 0 && this.handlers !== undefined) {
        const handler = this.handlers[method]
        if (handler === undefined) return Exit.fail(new UnknownMethod({ worker: this.shared.worker, method }))
        let result: unknown
        try {
          result = handler(payload)
        } catch (defect) {
          return Exit.fail(defectError(this.shared.worker, method, defect))
        }
        // A synchronous handler ran to completion without yielding: nothing
        // else could interleave, so it needed no lock at all.
        if (!Effect.isEffect(result)) return Exit.succeed(result)
        return this.runExclusive(method, result as Effect.Effect<unknown, unknown>)
      }
      return this.runExclusive(method, undefined, payload)
    })
  }

  /**
   * Runs a call under the instance's flag. The exit hook is registered before
   * the flag is taken, so an interruption at any point releases exactly what
   * was taken. `effect` is the handler's Effect when the handler was already
   * called; otherwise the handler is called once the flag is held.
   */
  private runExclusive(
    method: string,
    effect: Effect.Effect<unknown, unknown> | undefined,
    payload?: unknown
  ): Effect.Effect<unknown, unknown> {
    const waiter = new Waiter()
    return Effect.onExit(
      Effect.suspend(() => {
        if ((this.flags & BUSY) === 0) {
          this.flags |= BUSY
          waiter.owned = true
          return this.runOwned(method, effect, payload)
        }
        const queue = (this.queue ??= new WaitQueue())
        if (queue.length >= this.shared.mailbox.capacity && this.shared.mailbox.onFull === "fail") {
          return Exit.fail(
            new MailboxFull({ worker: this.shared.worker, key: this.key, capacity: this.shared.mailbox.capacity })
          )
        }
        queue.push(waiter)
        return Effect.flatMap(
          Effect.callback<void>((resume) => {
            waiter.resume = resume
            // Interrupted while queued: leave the queue (a release skips it).
            return Effect.sync(() => queue.cancel(waiter))
          }),
          () => this.runOwned(method, effect, payload)
        )
      }),
      () => {
        if (waiter.owned) this.release()
        return Effect.void
      }
    )
  }

  private runOwned(
    method: string,
    effect: Effect.Effect<unknown, unknown> | undefined,
    payload: unknown
  ): Effect.Effect<unknown, unknown> {
    if (effect !== undefined) return catchDefects(effect, this.shared.worker, method)
    if (this.handlers === undefined) {
      if (this.shared.closed) return Exit.fail(new CorpsClosed({ corps: this.shared.corps }))
      return Effect.flatMap(this.build(method), () => this.invokeOwned(method, payload))
    }
    return this.invokeOwned(method, payload)
  }

  private invokeOwned(method: string, payload: unknown): Effect.Effect<unknown, unknown> {
    const handler = this.handlers![method]
    if (handler === undefined) return Exit.fail(new UnknownMethod({ worker: this.shared.worker, method }))
    let result: unknown
    try {
      result = handler(payload)
    } catch (defect) {
      return Exit.fail(defectError(this.shared.worker, method, defect))
    }
    return Effect.isEffect(result)
      ? catchDefects(result as Effect.Effect<unknown, unknown>, this.shared.worker, method)
      : Exit.succeed(result)
  }

  /** Builds the instance's handlers in its own scope; the scope is kept only if something was registered in it. */
  private build(method: string): Effect.Effect<void, unknown> {
    const scope = Scope.makeUnsafe()
    return Effect.matchCauseEffect(this.shared.build(this.key, scope), {
      onSuccess: (handlers) => {
        this.handlers = handlers
        if (scope.state._tag !== "Empty") this.scope = scope
        return Effect.void
      },
      onFailure: (cause) =>
        // The instance stays unbuilt: the next call that gets it tries again.
        Effect.andThen(
          Scope.close(scope, Exit.failCause(cause)),
          Exit.fail(defectError(this.shared.worker, method, Cause.squash(cause)))
        )
    })
  }

  /** Concurrent methods skip the mailbox; the first call of an unbuilt instance still builds it under the flag. */
  private callConcurrent(method: string, payload: unknown): Effect.Effect<unknown, unknown> {
    return Effect.suspend(() =>
      this.handlers !== undefined ? this.invokeOwned(method, payload) : this.runExclusive(method, undefined, payload)
    )
  }

  /** Hands the flag to the next live waiter, or clears it. Loops rather than recursing. */
  release(): void {
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
        next.resume!(Effect.void)
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

  /** The instance for `key`, created (not yet built) on first use. */
  instance(key: string): ConcInstance {
    let instance = this.instances.get(key)
    if (instance === undefined) {
      instance = new ConcInstance(this.shared, key)
      this.instances.set(key, instance)
    }
    return instance
  }

  /** Closes every instance's scope, in parallel. */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    this.shared.closed = true
    const instances = [...this.instances.values()]
    this.instances.clear()
    return Effect.forEach(instances, (instance) => instance.close(exit), { concurrency: "unbounded", discard: true })
  }
}

/**
 * The calling side of a Link: multiplexes many concurrent calls over one
 * channel by numeric id.
 *
 * Per call the hot path allocates the request frame, one pending entry and
 * the `Effect.callback` that suspends the caller (with its interrupt
 * handler); there is no Deferred, no forked fiber and no `Effect.fn` (which
 * costs ~3.5 µs a call, see docs/transport.md).
 *
 * @since 0.1.0
 */
import type { Transferable } from "node:worker_threads"
import * as Effect from "effect/Effect"
import { CallLost } from "../../CorpsError.ts"
import * as Frame from "./Frame.ts"
import type { Link } from "./Link.ts"

/**
 * One call to send, with the objects to transfer rather than copy, if any.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallRequest extends Frame.Call {
  readonly transfer?: ReadonlyArray<Transferable> | undefined
}

/**
 * The calling side of one Link.
 *
 * @since 0.1.0
 * @category models
 */
export interface Client {
  /** The name of the Env at the other end, reported in {@link CallLost}. */
  readonly envName: string
  /**
   * Sends one call and waits for its reply. Interrupting the caller sends an
   * Interrupt frame and waits until the Env confirms that the handler (and its
   * finalizers) finished. Fails with {@link CallLost} if the link closes first
   * or is already closed.
   */
  readonly call: (request: CallRequest) => Effect.Effect<Frame.ReplyExit, CallLost>
  /** Calls sent and not yet answered (including interrupted ones awaiting confirmation). */
  readonly inFlight: number
  /** Why the link closed, or `undefined` while it is open. */
  readonly closeReason: string | undefined
  /** Closes the underlying link; every pending call fails with {@link CallLost}. */
  readonly close: Effect.Effect<void>
  /**
   * The register function of {@link call}, for a dispatcher (the Pool) that
   * chooses the client inside its own `Effect.callback`.
   */
  readonly register: (
    request: CallRequest,
    resume: (effect: Effect.Effect<Frame.ReplyExit, CallLost>) => void
  ) => Effect.Effect<void> | undefined
}

/**
 * Options of {@link makeClient}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** The name of the Env at the other end of the link. */
  readonly envName: string
}

/**
 * Makes the calling side of a Link. The client owns the link's message
 * receiver, so make one client per link.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeClient = (link: Link, options: ClientOptions): Effect.Effect<Client> =>
  Effect.sync(() => new ClientImpl(link, options.envName))

/** A call in flight. A class, so that every entry has the same shape. */
class Pending {
  readonly request: CallRequest
  readonly resume: (effect: Effect.Effect<Frame.ReplyExit, CallLost>) => void
  /** Set when the caller was interrupted: resumes the interrupt handler once the Env confirms. */
  confirm: ((effect: Effect.Effect<void>) => void) | undefined = undefined

  constructor(request: CallRequest, resume: (effect: Effect.Effect<Frame.ReplyExit, CallLost>) => void) {
    this.request = request
    this.resume = resume
  }
}

class ClientImpl implements Client {
  readonly link: Link
  readonly envName: string
  readonly pending = new Map<number, Pending>()
  nextId = 0
  readonly call: Client["call"]
  readonly register: Client["register"]
  readonly close: Effect.Effect<void>

  constructor(link: Link, envName: string) {
    this.link = link
    this.envName = envName
    this.close = link.close
    // Own properties rather than methods, so that they can be passed around unbound.
    this.register = (request, resume) => this.start(request, resume)
    // One parameter only: with two, Effect.callback allocates an AbortController per call.
    this.call = (request) => Effect.callback((resume) => this.start(request, resume))
    link.onMessage((frames) => this.receive(frames))
    link.onUndeliverable((frame, error) => this.undeliverable(frame, error))
    link.onClose((reason) => this.lost(reason))
  }

  get inFlight(): number {
    return this.pending.size
  }

  get closeReason(): string | undefined {
    return this.link.closeReason
  }

  start(
    request: CallRequest,
    resume: (effect: Effect.Effect<Frame.ReplyExit, CallLost>) => void
  ): Effect.Effect<void> | undefined {
    const reason = this.link.closeReason
    if (reason !== undefined) {
      resume(Effect.fail(this.callLost(request, reason)))
      return undefined
    }
    const id = this.nextId++
    const entry = new Pending(request, resume)
    this.pending.set(id, entry)
    this.link.send([Frame.request(id, request)], request.transfer)
    return Effect.callback<void>((confirm) => this.interrupt(id, entry, confirm))
  }

  /** Runs when the caller is interrupted: asks the Env to interrupt the handler and waits for its reply. */
  interrupt(id: number, entry: Pending, confirm: (effect: Effect.Effect<void>) => void): void {
    if (this.pending.get(id) !== entry) {
      confirm(Effect.void)
      return
    }
    entry.confirm = confirm
    this.link.send([Frame.interrupt(id)])
  }

  receive(frames: ReadonlyArray<Frame.Frame>): void {
    // A plain loop: each resume runs its fiber synchronously up to its next
    // suspension and returns, so thousands of replies in one batch never nest.
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!
      if (frame[0] !== Frame.REPLY) continue
      const entry = this.pending.get(frame[1])
      if (entry === undefined) continue
      this.pending.delete(frame[1])
      if (entry.confirm !== undefined) entry.confirm(Effect.void)
      else entry.resume(Effect.succeed(Frame.exitOf(frame)))
    }
  }

  /** A request could not be cloned: only its own call fails, with a defect (interrupt frames always clone). */
  undeliverable(frame: Frame.Frame, error: unknown): void {
    if (frame[0] !== Frame.REQUEST) return
    const entry = this.pending.get(frame[1])
    if (entry === undefined) return
    this.pending.delete(frame[1])
    const defect = { name: "DataCloneError", message: `the request could not be sent: ${describeError(error)}` }
    if (entry.confirm !== undefined) entry.confirm(Effect.void)
    else entry.resume(Effect.succeed({ _tag: "Defect", defect }))
  }

  /** The link closed: fail every pending call at once. */
  lost(reason: string): void {
    // Detach first: resumed callers may call again, and must find the client closed.
    const entries = Array.from(this.pending.values())
    this.pending.clear()
    for (const entry of entries) {
      if (entry.confirm !== undefined) entry.confirm(Effect.void)
      else entry.resume(Effect.fail(this.callLost(entry.request, reason)))
    }
  }

  callLost(request: CallRequest, reason: string): CallLost {
    return new CallLost({ worker: request.worker, method: request.method, env: this.envName, reason })
  }
}

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error))

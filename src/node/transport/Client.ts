/**
 * The calling side of a Link: multiplexes many concurrent calls over one
 * channel by numeric id.
 *
 * Per call the hot path allocates one pending entry and the `Effect.callback`
 * that suspends the caller (with its interrupt handler); the call itself is
 * written straight into the link's batch. There is no Deferred, no forked
 * fiber and no `Effect.fn` (which costs ~3.5 µs a call, see
 * docs/transport.md).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { CallLost } from "../../CorpsError.ts"
import { messageOf } from "../../internal/message.ts"
import type * as Wire from "../../internal/wire.ts"
import * as Frame from "./Frame.ts"
import type { Link } from "./Link.ts"

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
   * or is already closed (`mayHaveRun` says which).
   */
  readonly call: (request: Wire.Call) => Effect.Effect<Wire.Exit, CallLost>
  /** Calls sent and not yet answered (including interrupted ones awaiting confirmation). */
  readonly inFlight: number
  /** Why the link closed, or `undefined` while it is open. */
  readonly closeReason: string | undefined
  /** Closes the underlying link; every pending call fails with {@link CallLost}. */
  readonly close: Effect.Effect<void>
  /**
   * The register function of {@link call}, for a caller that chooses the
   * client inside its own `Effect.callback` (one suspension per call).
   */
  readonly register: (
    request: Wire.Call,
    resume: (effect: Effect.Effect<Wire.Exit, CallLost>) => void
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
  readonly request: Wire.Call
  readonly resume: (effect: Effect.Effect<Wire.Exit, CallLost>) => void
  /** Set when the caller was interrupted: resumes the interrupt handler once the Env confirms. */
  confirm: ((effect: Effect.Effect<void>) => void) | undefined = undefined

  constructor(request: Wire.Call, resume: (effect: Effect.Effect<Wire.Exit, CallLost>) => void) {
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
    // The client owns the receiver: the calling side of a link only ever receives replies.
    link.onMessage({ call: ignore, interrupt: ignore, reply: (id, exit) => this.reply(id, exit) })
    link.onUndeliverable((tag, id, error) => this.undeliverable(tag, id, error))
    link.onClose((reason) => this.lost(reason))
  }

  get inFlight(): number {
    return this.pending.size
  }

  get closeReason(): string | undefined {
    return this.link.closeReason
  }

  start(
    request: Wire.Call,
    resume: (effect: Effect.Effect<Wire.Exit, CallLost>) => void
  ): Effect.Effect<void> | undefined {
    const reason = this.link.closeReason
    if (reason !== undefined) {
      resume(Effect.fail(this.callLost(request, reason, false)))
      return undefined
    }
    const id = this.nextId++
    const entry = new Pending(request, resume)
    this.pending.set(id, entry)
    this.link.sendCall(id, request)
    return Effect.callback<void>((confirm) => this.interrupt(id, entry, confirm))
  }

  /** Runs when the caller is interrupted: asks the Env to interrupt the handler and waits for its reply. */
  interrupt(id: number, entry: Pending, confirm: (effect: Effect.Effect<void>) => void): void {
    if (this.pending.get(id) !== entry) {
      confirm(Effect.void)
      return
    }
    entry.confirm = confirm
    this.link.sendInterrupt(id)
  }

  reply(id: number, exit: Wire.Exit): void {
    const entry = this.pending.get(id)
    if (entry === undefined) return
    this.pending.delete(id)
    if (entry.confirm !== undefined) entry.confirm(Effect.void)
    else entry.resume(Effect.succeed(exit))
  }

  /** A request could not be cloned: only its own call fails, with a defect (interrupt frames always clone). */
  undeliverable(tag: Frame.Tag, id: number, error: unknown): void {
    if (tag !== Frame.REQUEST && tag !== Frame.TRACED_REQUEST) return
    const entry = this.pending.get(id)
    if (entry === undefined) return
    this.pending.delete(id)
    const defect = { name: "DataCloneError", message: `the request could not be sent: ${messageOf(error)}` }
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
      else entry.resume(Effect.fail(this.callLost(entry.request, reason, true)))
    }
  }

  /** `mayHaveRun`: the call was written to the link (it may have reached the Env), rather than refused here. */
  callLost(request: Wire.Call, reason: string, mayHaveRun: boolean): CallLost {
    return new CallLost({ worker: request.worker, method: request.method, env: this.envName, reason, mayHaveRun })
  }
}

const ignore = (): void => {}

/**
 * The Env side of a Link: runs every incoming call in its own fiber and
 * sends the replies back, batched per flush by the Link.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Frame from "./Frame.ts"
import type { Link } from "./Link.ts"

/**
 * Runs one call and returns its encoded outcome. A handler that dies or is
 * interrupted instead is answered with a `Defect` (encoded with
 * `Schema.Defect()`) or `Interrupted` reply.
 *
 * @since 0.1.0
 * @category models
 */
export type Handler<R> = (call: Frame.Call) => Effect.Effect<Frame.ReplyExit, never, R>

/**
 * Serves calls arriving on `link` until it closes, running each in its own
 * fiber with the services of the calling fiber.
 *
 * An Interrupt frame interrupts the call's fiber; the `Interrupted` reply is
 * sent once its finalizers have run, which is what the caller waits for. When
 * `serve` ends (the link closed, or `serve` was interrupted) every running
 * call is interrupted and awaited, then the link is closed: `serve` owns the
 * link, so a caller never waits on a link that nobody serves.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = <R>(link: Link, handler: Handler<R>): Effect.Effect<void, never, R> =>
  Effect.flatMap(Effect.context<R>(), (context) => {
    const server = new ServerImpl(link, handler as Handler<never>, context as Context.Context<never>)
    return Effect.ensuring(server.awaitClose, server.stop)
  })

class ServerImpl {
  readonly link: Link
  readonly handler: Handler<never>
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  readonly running = new Map<number, Fiber.Fiber<Frame.ReplyExit>>()
  stopping = false
  readonly awaitClose: Effect.Effect<void>
  readonly stop: Effect.Effect<void>

  constructor(link: Link, handler: Handler<never>, context: Context.Context<never>) {
    this.link = link
    this.handler = handler
    this.runFork = Effect.runForkWith(context)
    this.awaitClose = Effect.callback<void>((resume) => link.onClose(() => resume(Effect.void)))
    this.stop = Effect.suspend(() => {
      this.stopping = true
      return Fiber.interruptAll(Array.from(this.running.values()))
    }).pipe(Effect.andThen(link.close))
    link.onMessage((frames) => this.receive(frames))
    link.onUndeliverable((frame, error) => this.undeliverable(frame, error))
  }

  receive(frames: ReadonlyArray<Frame.Frame>): void {
    // A plain loop: fibers start (and often finish) synchronously one after
    // the other, so a batch of thousands of requests never nests.
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!
      if (frame[0] === Frame.REQUEST) this.start(frame)
      else if (frame[0] === Frame.INTERRUPT) this.running.get(frame[1])?.interruptUnsafe()
    }
  }

  start(frame: Frame.Request): void {
    const id = frame[1]
    if (this.stopping) {
      this.link.send([Frame.reply(id, Frame.interrupted)])
      return
    }
    let effect: Effect.Effect<Frame.ReplyExit>
    try {
      effect = this.handler(Frame.callOf(frame))
    } catch (defect) {
      this.link.send([[Frame.REPLY, id, Frame.DEFECT, encodeDefect(defect)]])
      return
    }
    // A handler that answered eagerly (`Effect.succeed`, a decode failure…) needs no fiber.
    if (Exit.isExit(effect)) {
      this.reply(id, effect as Exit.Exit<Frame.ReplyExit>)
      return
    }
    const fiber = this.runFork(effect)
    // runForkWith starts the fiber at once: a synchronous handler is already done.
    const exit = fiber.pollUnsafe()
    if (exit !== undefined) {
      this.reply(id, exit)
      return
    }
    this.running.set(id, fiber)
    fiber.addObserver((exit) => {
      this.running.delete(id)
      this.reply(id, exit)
    })
  }

  reply(id: number, exit: Exit.Exit<Frame.ReplyExit>): void {
    let frame: Frame.Reply
    if (exit._tag === "Success") frame = Frame.reply(id, exit.value)
    else if (Cause.hasInterruptsOnly(exit.cause)) frame = [Frame.REPLY, id, Frame.INTERRUPTED, undefined]
    else frame = [Frame.REPLY, id, Frame.DEFECT, encodeDefect(Cause.squash(exit.cause))]
    this.link.send([frame])
  }

  /** A reply could not be cloned: answer its call with a defect that says so. */
  undeliverable(frame: Frame.Frame, error: unknown): void {
    if (frame[0] !== Frame.REPLY) return
    const message = `the reply could not be sent: ${error instanceof Error ? error.message : String(error)}`
    this.link.send([[Frame.REPLY, frame[1], Frame.DEFECT, { name: "DataCloneError", message }]])
  }
}

const encodeDefectSync = Schema.encodeSync(Schema.Defect())

/** Encodes a defect the way the layer above decodes it (`Schema.Defect()`), never throwing. */
const encodeDefect = (defect: unknown): unknown => {
  try {
    return encodeDefectSync(defect)
  } catch {
    return String(defect)
  }
}

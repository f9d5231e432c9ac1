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
import * as Wire from "../../internal/wire.ts"
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
export type Handler<R> = (call: Wire.Call) => Effect.Effect<Wire.Exit, never, R>

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
  readonly running = new Map<number, Fiber.Fiber<Wire.Exit>>()
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
    // Fibers start (and often finish) synchronously one after the other as
    // Frame.read walks a batch, so a batch of thousands of requests never nests.
    link.onMessage({
      call: (id, call) => this.start(id, call),
      interrupt: (id) => this.running.get(id)?.interruptUnsafe(),
      reply: ignore
    })
    link.onUndeliverable((tag, id, error) => this.undeliverable(tag, id, error))
  }

  start(id: number, call: Wire.Call): void {
    if (this.stopping) {
      this.link.sendReply(id, Wire.interrupted)
      return
    }
    let effect: Effect.Effect<Wire.Exit>
    try {
      effect = this.handler(call)
    } catch (defect) {
      this.link.sendReply(id, { _tag: "Defect", defect: encodeDefect(defect) })
      return
    }
    // A handler that answered eagerly (`Effect.succeed`, a decode failure…) needs no fiber.
    if (Exit.isExit(effect)) {
      this.reply(id, effect as Exit.Exit<Wire.Exit>)
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

  reply(id: number, exit: Exit.Exit<Wire.Exit>): void {
    if (exit._tag === "Success") this.link.sendReply(id, exit.value)
    else if (Cause.hasInterruptsOnly(exit.cause)) this.link.sendReply(id, Wire.interrupted)
    else this.link.sendReply(id, { _tag: "Defect", defect: encodeDefect(Cause.squash(exit.cause)) })
  }

  /** A reply could not be cloned: answer its call with a defect that says so. */
  undeliverable(tag: Frame.Tag, id: number, error: unknown): void {
    if (tag !== Frame.REPLY) return
    const message = `the reply could not be sent: ${error instanceof Error ? error.message : String(error)}`
    this.link.sendReply(id, { _tag: "Defect", defect: { name: "DataCloneError", message } })
  }
}

const ignore = (): void => {}

const encodeDefectSync = Schema.encodeSync(Schema.Defect())

/** Encodes a defect the way the layer above decodes it (`Schema.Defect()`), never throwing. */
const encodeDefect = (defect: unknown): unknown => {
  try {
    return encodeDefectSync(defect)
  } catch {
    return String(defect)
  }
}

/**
 * A Link is one bidirectional message channel between the caller's runtime
 * and an Env: a worker thread, a child process, or a `MessagePort`.
 *
 * Each side queues the frames it sends and posts them as ONE array per
 * flush, scheduled with `queueMicrotask`. Batching is what makes the
 * transport fast: one structured clone and one wake-up of the other thread
 * carry every frame produced in a turn. Calls and replies are written straight
 * into the batch, one flat array (see Frame.ts), which clones faster than an
 * array of tuples or objects (docs/transport.md).
 *
 * @since 0.1.0
 */
import type { ChildProcess } from "node:child_process"
import { type MessagePort, parentPort, type Transferable, type Worker } from "node:worker_threads"
import * as Effect from "effect/Effect"
import { messageOf } from "../../internal/message.ts"
import type * as Wire from "../../internal/wire.ts"
import * as Frame from "./Frame.ts"

/**
 * One bidirectional, batching message channel carrying calls and replies.
 *
 * @since 0.1.0
 * @category models
 */
export interface Link {
  /**
   * Queues call `id` for the next flush (same microtask turn). Its `transfer`
   * buffers are moved rather than copied; child processes cannot transfer, so
   * they copy them.
   */
  readonly sendCall: (id: number, call: Wire.Call) => void
  /** Queues an interrupt of call `id` for the next flush. */
  readonly sendInterrupt: (id: number) => void
  /** Queues the reply to call `id` for the next flush. */
  readonly sendReply: (id: number, exit: Wire.Exit) => void
  /** Sets the receiver of incoming frames; batches that arrived earlier are replayed to it at once. */
  readonly onMessage: (receiver: Frame.Receiver) => void
  /** Adds a listener called once when the channel closes or its peer dies (at once if already closed). */
  readonly onClose: (cb: (reason: string) => void) => void
  /**
   * Sets the receiver of frames that could not be sent because their content
   * cannot be cloned (a function, a class instance with private state…). The
   * other frames of the batch are still delivered.
   */
  readonly onUndeliverable: (cb: (tag: Frame.Tag, id: number, error: unknown) => void) => void
  /** Why the link closed, or `undefined` while it is open. */
  readonly closeReason: string | undefined
  /**
   * Closes the channel: flushes queued frames, then ends the peer (terminates
   * the thread, stops the child process) or detaches from the parent.
   */
  readonly close: Effect.Effect<void>
}

/**
 * Options of {@link fromChildProcess}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildProcessOptions {
  /**
   * How long `close` waits after SIGTERM before sending SIGKILL, in
   * milliseconds. Default 2000. Node 24 sometimes hangs in `process.exit`, so
   * a child is never trusted to exit by itself.
   */
  readonly killTimeout?: number | undefined
}

/**
 * A Link to a worker thread, seen from the thread that spawned it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromWorker = (worker: Worker): Link => {
  const link = new LinkImpl(
    (batch, transfer) => worker.postMessage(batch, transfer),
    () => worker.terminate().then(() => undefined)
  )
  let crash: string | undefined
  worker.on("message", link.receive)
  // An undecodable message loses its frames and the calls they answer; closing
  // the link fails those calls instead of letting them hang.
  worker.on("messageerror", (error) => {
    link.closed(`undecodable message from thread: ${messageOf(error)}`)
    void worker.terminate()
  })
  // Without an "error" listener an uncaught exception in the thread would crash this process.
  worker.on("error", (error) => {
    crash = `thread crashed: ${messageOf(error)}`
  })
  worker.on("exit", (code) => link.closed(crash ?? `thread exited with code ${code}`))
  return link
}

/**
 * The Link of a worker thread to the thread that spawned it (`parentPort`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromParentPort = (port: MessagePort): Link => fromMessagePort(port, "parent port closed")

/**
 * A Link over a `MessagePort` (one end of a `MessageChannel`), e.g. to test
 * both sides in one thread.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromMessagePort = (port: MessagePort, closeReason = "message port closed"): Link => {
  const link = new LinkImpl(
    (batch, transfer) => port.postMessage(batch, transfer),
    () => port.close()
  )
  port.on("message", link.receive)
  port.on("messageerror", (error) => {
    link.closed(`undecodable message: ${messageOf(error)}`)
    port.close()
  })
  port.on("close", () => link.closed(closeReason))
  return link
}

/**
 * A Link to a child process, seen from its parent. The child must have been
 * started with `fork(..., { serialization: "advanced" })` so that frames are
 * structured-cloned like `postMessage` (Map, Set, typed arrays, bigint…).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromChildProcess = (child: ChildProcess, options?: ChildProcessOptions | undefined): Link => {
  const killTimeout = options?.killTimeout ?? 2000
  let link: LinkImpl | undefined
  // A send that fails after the batch left (the channel closed under it)
  // means the frames are lost: close so that their calls fail.
  const onSent = (error: Error | null) => {
    if (error) link!.closed(`send to child process failed: ${messageOf(error)}`)
  }
  link = new LinkImpl(
    (batch) => {
      child.send(batch, onSent)
    },
    () => stopChild(child, killTimeout)
  )
  child.on("message", link.receive as (message: unknown) => void)
  child.on("error", (error) => link.closed(`child process error: ${messageOf(error)}`))
  child.on("disconnect", () => link.closed(`child process ${child.pid} disconnected`))
  child.on("exit", (code, signal) =>
    link.closed(`child process ${child.pid} exited with ${signal === null ? `code ${code}` : signal}`)
  )
  return link
}

/**
 * The Link of a child process to its parent (`process.send` and the
 * `message` event). Closing it disconnects the IPC channel.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromProcess = (proc: NodeJS.Process = process): Link => {
  if (proc.send === undefined)
    throw new Error("fromProcess: this process has no IPC channel (was it started with fork?)")
  let link: LinkImpl | undefined
  const onSent = (error: Error | null) => {
    if (error) link!.closed(`send to parent process failed: ${messageOf(error)}`)
  }
  link = new LinkImpl(
    (batch) => {
      proc.send!(batch, onSent)
    },
    () => {
      if (proc.connected) proc.disconnect?.()
    }
  )
  proc.on("message", link.receive as (message: unknown) => void)
  proc.on("disconnect", () => link.closed("parent process disconnected"))
  return link
}

/**
 * The Link to whoever started this Env: `parentPort` in a worker thread, the
 * IPC channel in a forked child process.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromParent = (): Link => {
  if (parentPort !== null) return fromParentPort(parentPort)
  return fromProcess(process)
}

/**
 * The shared machinery of every Link: the outgoing queue and its microtask
 * flush, the replay buffer for batches received before `onMessage`, and the
 * one-shot close notification. Exported for the other transports
 * (Socket.ts); not part of the package's API.
 *
 * @since 0.4.0
 * @category internals
 */
export class LinkImpl implements Link {
  readonly post: (batch: Array<unknown>, transfer: Array<Transferable> | undefined) => void
  readonly shutdown: () => Promise<void> | void
  /** The frames of the next batch, flat. */
  out: Array<unknown> = []
  transfer: Array<Transferable> | undefined = undefined
  scheduled = false
  receiver: Frame.Receiver | undefined = undefined
  early: Array<ReadonlyArray<unknown>> | undefined = undefined
  closeCbs: Array<(reason: string) => void> = []
  undeliverableCb: ((tag: Frame.Tag, id: number, error: unknown) => void) | undefined = undefined
  closeReason: string | undefined = undefined
  readonly flush: () => void
  readonly receive: (batch: ReadonlyArray<unknown>) => void
  readonly close: Effect.Effect<void>

  constructor(
    post: (batch: Array<unknown>, transfer: Array<Transferable> | undefined) => void,
    shutdown: () => Promise<void> | void
  ) {
    this.post = post
    this.shutdown = shutdown
    // Bound once: these run for every batch and must not allocate a closure each time.
    this.flush = () => this.flushNow()
    this.receive = (batch) => {
      if (this.receiver !== undefined) Frame.read(batch, this.receiver)
      else (this.early ??= []).push(batch)
    }
    this.close = Effect.suspend(() => {
      this.flushNow()
      this.closed("closed")
      return Effect.promise(async () => {
        await this.shutdown()
      })
    })
  }

  sendCall(id: number, call: Wire.Call): void {
    if (this.closeReason !== undefined) return
    Frame.writeCall(this.out, id, call)
    const transfer = call.transfer
    if (transfer !== undefined && transfer.length > 0) {
      const all = (this.transfer ??= [])
      for (let i = 0; i < transfer.length; i++) all.push(transfer[i]!)
    }
    this.schedule()
  }

  sendInterrupt(id: number): void {
    if (this.closeReason !== undefined) return
    Frame.writeInterrupt(this.out, id)
    this.schedule()
  }

  sendReply(id: number, exit: Wire.Exit): void {
    if (this.closeReason !== undefined) return
    Frame.writeReply(this.out, id, exit)
    this.schedule()
  }

  schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.flush)
    }
  }

  flushNow(): void {
    this.scheduled = false
    if (this.out.length === 0 || this.closeReason !== undefined) return
    const batch = this.out
    const transfer = this.transfer
    this.out = []
    this.transfer = undefined
    try {
      this.post(batch, transfer)
    } catch {
      // Posting throws synchronously only when a value cannot be cloned.
      // Retry frame by frame so that one bad frame fails only its own call;
      // the transfer list is dropped (its objects are copied instead).
      for (let i = 0; i < batch.length; ) {
        const length = Frame.lengthOf(batch[i])
        try {
          this.post(batch.slice(i, i + length), undefined)
        } catch (error) {
          this.undeliverableCb?.(batch[i] as Frame.Tag, batch[i + 1] as number, error)
        }
        i += length
      }
    }
  }

  onMessage(receiver: Frame.Receiver): void {
    this.receiver = receiver
    const early = this.early
    if (early === undefined) return
    this.early = undefined
    for (const batch of early) Frame.read(batch, receiver)
  }

  onClose(cb: (reason: string) => void): void {
    if (this.closeReason !== undefined) cb(this.closeReason)
    else this.closeCbs.push(cb)
  }

  onUndeliverable(cb: (tag: Frame.Tag, id: number, error: unknown) => void): void {
    this.undeliverableCb = cb
  }

  closed(reason: string): void {
    if (this.closeReason !== undefined) return
    this.closeReason = reason
    this.out = []
    this.transfer = undefined
    const cbs = this.closeCbs
    this.closeCbs = []
    for (const cb of cbs) cb(reason)
  }
}

/**
 * Stops a child process: SIGTERM, then SIGKILL once `killTimeout` has passed.
 * Real timers on purpose: this waits for an OS process, which a test clock
 * does not drive.
 */
const stopChild = (child: ChildProcess, killTimeout: number): Promise<void> =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), killTimeout)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })

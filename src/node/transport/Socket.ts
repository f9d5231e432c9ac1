/**
 * The call transport over a byte stream (a TCP socket, a TLS socket, a
 * pipe): the Links of the `host` Env.
 *
 * A flush of the Link (every frame of a turn) is ONE write of one
 * length-prefixed frame holding `v8.serialize(batch)`: the same flat batch
 * that threads and processes post, serialized the way `serialization:
 * "advanced"` IPC does. Between batches each side sends a small ping when it
 * has sent nothing for `heartbeatMillis`; a side that hears nothing from its
 * peer (no batch, no ping) for `heartbeatTimeoutMillis` closes the link with
 * "heartbeat timed out". That is how a cut cable or a frozen host is found:
 * TCP alone keeps such a connection open for many minutes.
 *
 * ```
 * frame = u32 big-endian body length | u8 kind | body
 * kind 0 BATCH    body = v8.serialize(flat frame array)   (Frame.ts)
 * kind 1 PING     body empty
 * kind 2 CONTROL  body = v8.serialize(message)            (host protocol, before the link starts)
 * ```
 *
 * A frame announcing more than `maxFrameBytes`, a body that does not
 * deserialize to a batch, or an unknown kind closes the link with a reason
 * that says so; nothing a peer sends can throw out of the reader.
 *
 * @since 0.4.0
 */
import type * as Net from "node:net"
import * as V8 from "node:v8"
import { messageOf } from "../../internal/message.ts"
import { type Link, LinkImpl } from "./Link.ts"

/** Kind of a frame carrying one batch of calls and replies. @since 0.4.0 */
export const BATCH = 0
/** Kind of a heartbeat frame. @since 0.4.0 */
export const PING = 1
/** Kind of a control message of the host protocol (src/host/protocol.ts). @since 0.4.0 */
export const CONTROL = 2

const HEADER = 5

/** Default largest frame accepted: 64 MiB. @since 0.4.0 */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
/** Default interval of heartbeats. @since 0.4.0 */
export const DEFAULT_HEARTBEAT_MILLIS = 1_000
/** Default silence after which a link is closed. @since 0.4.0 */
export const DEFAULT_HEARTBEAT_TIMEOUT_MILLIS = 15_000

/**
 * Splits a byte stream into frames. Calls `onFrame(kind, body)` per frame, in
 * order, and `onError(reason)` once on a frame it refuses (then ignores the
 * rest). Chunks are kept as they came and joined once per frame, so a large
 * frame arriving in many chunks is copied once.
 *
 * @since 0.4.0
 * @category models
 */
export class FrameReader {
  readonly maxFrameBytes: number
  onFrame: (kind: number, body: Buffer) => void
  onError: (reason: string) => void
  chunks: Array<Buffer> = []
  buffered = 0
  failed = false

  constructor(maxFrameBytes: number, onFrame: (kind: number, body: Buffer) => void, onError: (reason: string) => void) {
    this.maxFrameBytes = maxFrameBytes
    this.onFrame = onFrame
    this.onError = onError
  }

  push(chunk: Buffer): void {
    if (this.failed) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
    while (!this.failed && this.buffered >= HEADER) {
      const head = this.peek(HEADER)
      const length = head.readUInt32BE(0)
      if (length > this.maxFrameBytes) {
        this.failed = true
        this.onError(`a frame of ${length} bytes is over the limit of ${this.maxFrameBytes} bytes`)
        return
      }
      if (this.buffered < HEADER + length) return
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered)
      const kind = all[4]!
      const body = all.subarray(HEADER, HEADER + length)
      const rest = all.subarray(HEADER + length)
      this.chunks = rest.length === 0 ? [] : [rest]
      this.buffered = rest.length
      this.onFrame(kind, body)
    }
  }

  /** What is left unread (handed to the next reader of the stream). */
  take(): Buffer {
    const rest = Buffer.concat(this.chunks, this.buffered)
    this.chunks = []
    this.buffered = 0
    return rest
  }

  private peek(bytes: number): Buffer {
    const first = this.chunks[0]!
    if (first.length >= bytes) return first
    const joined = Buffer.concat(this.chunks, this.buffered)
    this.chunks = [joined]
    return joined
  }
}

/**
 * Writes one frame of `kind` holding `body` (one write, header included).
 *
 * @since 0.4.0
 */
export const writeFrame = (socket: Net.Socket, kind: number, body: Uint8Array): boolean => {
  const frame = Buffer.allocUnsafe(HEADER + body.length)
  frame.writeUInt32BE(body.length, 0)
  frame[4] = kind
  frame.set(body, HEADER)
  return socket.write(frame)
}

/**
 * Options of {@link fromSocket}.
 *
 * @since 0.4.0
 * @category models
 */
export interface SocketOptions {
  /** Largest frame accepted from the peer; a larger one closes the link. Default 64 MiB. */
  readonly maxFrameBytes?: number | undefined
  /** A ping is sent after this long without sending anything. Default 1000 ms. */
  readonly heartbeatMillis?: number | undefined
  /** The link closes ("heartbeat timed out") after this long without hearing from the peer. Default 15000 ms. */
  readonly heartbeatTimeoutMillis?: number | undefined
  /** Bytes already read from the socket (after a handshake) that belong to the link. */
  readonly leftover?: Buffer | undefined
  /** A name for the peer in close reasons ("host 10.0.0.2:7400"). */
  readonly peer?: string | undefined
}

/**
 * A Link over a connected byte stream. The link owns the socket from here
 * on: closing the link ends it, and the socket's end or error closes the
 * link. `socket.setNoDelay(true)` is set: a batch is one write, and Nagle's
 * delay would hold a small batch back until the previous one is acknowledged.
 *
 * @since 0.4.0
 * @category constructors
 */
export const fromSocket = (socket: Net.Socket, options?: SocketOptions | undefined): Link => {
  const peer = options?.peer ?? "peer"
  const heartbeatMillis = options?.heartbeatMillis ?? DEFAULT_HEARTBEAT_MILLIS
  const timeoutMillis = options?.heartbeatTimeoutMillis ?? DEFAULT_HEARTBEAT_TIMEOUT_MILLIS
  let lastSent = Date.now()
  let lastSeen = Date.now()
  let timer: ReturnType<typeof setInterval> | undefined
  const empty = new Uint8Array(0)
  const link: LinkImpl = new LinkImpl(
    (batch) => {
      // Throws (before writing anything) when a value cannot be serialized: the Link retries frame by frame.
      const body = V8.serialize(batch)
      lastSent = Date.now()
      writeFrame(socket, BATCH, body)
    },
    () =>
      new Promise<void>((resolve) => {
        stop()
        if (socket.destroyed) return resolve()
        // Let queued batches reach the peer, but never wait on it for long.
        const force = setTimeout(() => socket.destroy(), 2_000)
        socket.once("close", () => {
          clearTimeout(force)
          resolve()
        })
        socket.end()
      })
  )
  const stop = () => {
    if (timer !== undefined) clearInterval(timer)
    timer = undefined
  }
  const fail = (reason: string) => {
    stop()
    link.closed(reason)
    socket.destroy()
  }
  const reader = new FrameReader(
    options?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    (kind, body) => {
      lastSeen = Date.now()
      if (kind === PING) return
      if (kind !== BATCH) return fail(`${peer} sent a frame of unknown kind ${kind}`)
      let batch: unknown
      try {
        batch = V8.deserialize(body)
      } catch (error) {
        return fail(`${peer} sent an undecodable frame: ${messageOf(error)}`)
      }
      if (!Array.isArray(batch)) return fail(`${peer} sent a frame that is not a batch`)
      link.receive(batch)
    },
    (reason) => fail(`${peer} ${reason}`)
  )
  socket.setNoDelay(true)
  socket.on("data", (chunk: Buffer) => reader.push(chunk))
  socket.on("error", (error) => {
    stop()
    link.closed(`connection to ${peer} failed: ${messageOf(error)}`)
  })
  socket.on("close", () => {
    stop()
    link.closed(`connection to ${peer} closed`)
  })
  timer = setInterval(
    () => {
      const now = Date.now()
      if (now - lastSeen > timeoutMillis)
        return fail(`heartbeat timed out: nothing from ${peer} for ${now - lastSeen} ms`)
      if (now - lastSent >= heartbeatMillis) {
        lastSent = now
        writeFrame(socket, PING, empty)
      }
    },
    Math.max(10, Math.min(heartbeatMillis, timeoutMillis / 2))
  )
  // Heartbeats alone never keep a process alive.
  timer.unref()
  if (options?.leftover !== undefined && options.leftover.length > 0) reader.push(options.leftover)
  if (socket.isPaused()) socket.resume()
  return link
}

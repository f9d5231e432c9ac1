/**
 * The dialing side of every framed effect-corps socket (`corps host`
 * daemons, ExtCorps servers): connect over TCP or TLS, prove the shared
 * secret (src/internal/auth.ts), exchange CONTROL frames until the protocol
 * says the link is open, then hand the socket to {@link fromSocket}. One
 * copy, so both protocols time out, clean up and report socket errors the
 * same way; each protocol only says what its control messages mean and how
 * a {@link DialFault} becomes its own typed error.
 */
import * as Net from "node:net"
import * as TLS from "node:tls"
import * as V8 from "node:v8"
import { Effect } from "effect"
import { parseAddress } from "../../internal/address.ts"
import * as Handshake from "../../internal/auth.ts"
import { messageOf } from "../../internal/message.ts"
import type { Link } from "./Link.ts"
import { CONTROL, FrameReader, fromSocket, type SocketOptions, writeFrame } from "./Socket.ts"

/** Encodes a control message (`v8.serialize`). */
export const encodeControl = (message: unknown): Uint8Array => V8.serialize(message)

/** Decodes a control frame's body into an object with a `type`, or `undefined`; each protocol checks the rest. */
export const decodeControl = (body: Uint8Array): (Record<string, unknown> & { readonly type: unknown }) | undefined => {
  let value: unknown
  try {
    value = V8.deserialize(body)
  } catch {
    return undefined
  }
  return typeof value === "object" && value !== null
    ? (value as Record<string, unknown> & { type: unknown })
    : undefined
}

/** How far a dial got. */
export type DialPhase = "connect" | "handshake" | "control"

/** Why a socket error happened, as both protocols report it. */
export type ConnectReason = "refused" | "tls" | "unreachable"

const connectReason = (error: NodeJS.ErrnoException): ConnectReason =>
  error.code === "ECONNREFUSED"
    ? "refused"
    : /^ERR_TLS|^ERR_SSL|CERT|certificate|SELF_SIGNED/.test(`${error.code ?? ""} ${error.message}`)
      ? "tls"
      : "unreachable"

/** Why a dial failed, before the protocol turns it into its own error. */
export type DialFault =
  | { readonly kind: "address" }
  | { readonly kind: "timeout"; readonly phase: DialPhase }
  | { readonly kind: "socket"; readonly phase: DialPhase; readonly reason: ConnectReason; readonly detail: string }
  /** `refused`: the handshake's verdict; absent when it failed for another reason (a timeout, a reset). */
  | { readonly kind: "handshake"; readonly refused?: Handshake.HandshakeRefused["reason"]; readonly detail: string }
  /** The peer broke the control exchange (a malformed or oversized frame, an early close): `detail` says how. */
  | { readonly kind: "control"; readonly detail: string }

/** What a protocol's control handler may do with the connection. */
export interface ControlStep<M, A, E> {
  readonly send: (message: M) => void
  readonly fail: (error: E) => void
  /** The control exchange is over: the socket becomes a link, and the dial succeeds with `value(link, socket)`. */
  readonly open: (link: SocketOptions & { readonly peer: string }, value: (link: Link, socket: Net.Socket) => A) => void
}

/** Options of {@link dialControl}. */
export interface DialControlOptions<M, A, E> {
  readonly address: string
  readonly secret: string
  /** The handshake greeting of the protocol. */
  readonly greeting: string
  /** Speak TLS, verifying the peer's certificate against `ca` (the system's CAs when absent). */
  readonly tls?: { readonly ca?: string | undefined } | undefined
  readonly timeoutMillis: number
  /** Largest control frame accepted while the exchange lasts. */
  readonly maxFrameBytes: number
  /** Names the peer in faults ("the daemon sent …"). */
  readonly peer: string
  /** What an early close interrupts ("… closed the connection before <awaiting>"). */
  readonly awaiting: string
  readonly fault: (fault: DialFault) => E
  /** The protocol's decoder (built on {@link decodeControl}): `undefined` makes a malformed-frame fault. */
  readonly decode: (body: Uint8Array) => M | undefined
  /** The first control message, sent once the secret is proven. */
  readonly hello: M
  /** One decoded control message; malformed frames never reach it. */
  readonly control: (message: M, step: ControlStep<M, A, E>) => void
}

/**
 * Connects, proves the secret, sends `hello` and runs `control` on each
 * control message until it opens the link or fails. Interrupting it drops
 * the socket.
 */
export const dialControl = <M, A, E>(options: DialControlOptions<M, A, E>): Effect.Effect<A, E> =>
  Effect.callback<A, E>((resume) => {
    const where = parseAddress(options.address)
    if (where === undefined) {
      resume(Effect.fail(options.fault({ kind: "address" })))
      return
    }
    let done = false
    let phase: DialPhase = "connect"
    const conn: Net.Socket =
      options.tls === undefined
        ? Net.createConnection({ host: where.host, port: where.port })
        : TLS.connect({
            host: where.host,
            port: where.port,
            ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca })
          })
    const finish = (outcome: Effect.Effect<A, E>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resume(outcome)
    }
    const failWith = (error: E) => {
      if (done) return
      conn.destroy()
      finish(Effect.fail(error))
    }
    const fault = (f: DialFault) => failWith(options.fault(f))
    const timer = setTimeout(() => fault({ kind: "timeout", phase }), options.timeoutMillis)
    conn.on("error", (error: NodeJS.ErrnoException) =>
      fault({ kind: "socket", phase, reason: connectReason(error), detail: messageOf(error) })
    )
    conn.once(options.tls === undefined ? "connect" : "secureConnect", () => {
      phase = "handshake"
      conn.setNoDelay(true)
      conn.pause()
      Handshake.dial(conn, options.secret, options.greeting).then(control, (error: Error) =>
        fault({
          kind: "handshake",
          ...(error instanceof Handshake.HandshakeRefused ? { refused: error.reason } : {}),
          detail: messageOf(error)
        })
      )
    })
    const send = (message: M) => writeFrame(conn, CONTROL, encodeControl(message))
    const control = () => {
      phase = "control"
      const onClose = () =>
        fault({ kind: "control", detail: `the ${options.peer} closed the connection before ${options.awaiting}` })
      const step: ControlStep<M, A, E> = {
        send,
        fail: failWith,
        open: (link, value) => {
          if (done) return
          conn.removeAllListeners("data")
          conn.removeAllListeners("error")
          conn.off("close", onClose)
          conn.pause()
          finish(Effect.succeed(value(fromSocket(conn, { ...link, leftover: reader.take() }), conn)))
        }
      }
      const reader = new FrameReader(
        options.maxFrameBytes,
        (kind, body) => {
          if (done) return
          const message = kind === CONTROL ? options.decode(body) : undefined
          if (message === undefined)
            return fault({ kind: "control", detail: `the ${options.peer} sent a malformed control frame` })
          options.control(message, step)
        },
        (reason) => fault({ kind: "control", detail: `the ${options.peer} sent ${reason}` })
      )
      conn.on("data", (chunk: Buffer) => reader.push(chunk))
      conn.once("close", onClose)
      send(options.hello)
      conn.resume()
    }
    return Effect.sync(() => {
      if (!done) {
        done = true
        clearTimeout(timer)
        conn.destroy()
      }
    })
  })

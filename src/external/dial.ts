/**
 * The dialing side of an ExtCorps connection: connect (TCP or TLS), prove
 * the secret, say hello, read the welcome. The socket then becomes the
 * connection's Link (src/node/transport/Socket.ts). Shared by
 * `Corps.connect` and `corps call`.
 */
import type * as Net from "node:net"
import * as NetModule from "node:net"
import * as TLS from "node:tls"
import { Effect } from "effect"
import { ExtConnectError } from "../CorpsError.ts"
import { parseAddress } from "../host/dial.ts"
import * as Handshake from "../internal/auth.ts"
import { messageOf } from "../internal/message.ts"
import type { Link } from "../node/transport/Link.ts"
import {
  CONTROL,
  DEFAULT_HEARTBEAT_MILLIS,
  DEFAULT_HEARTBEAT_TIMEOUT_MILLIS,
  DEFAULT_MAX_FRAME_BYTES,
  FrameReader,
  fromSocket,
  writeFrame
} from "../node/transport/Socket.ts"
import * as Protocol from "./protocol.ts"

/** Options of {@link dial}. */
export interface DialOptions {
  readonly address: string
  readonly secret: string
  /** Speak TLS, verifying the server's certificate against `ca` (the system's CAs when absent). */
  readonly tls?: { readonly ca?: string | undefined } | undefined
  readonly timeoutMillis: number
  /** This program's Corps ids (for handles it passes). */
  readonly corps: ReadonlyArray<string>
  /** Ask for each method's JSON Schemas too (`corps call --describe`). */
  readonly describe?: boolean | undefined
  readonly heartbeatMillis?: number | undefined
  readonly heartbeatTimeoutMillis?: number | undefined
}

/** An opened connection: its link and what the server said it serves. */
export interface Dialed {
  readonly link: Link
  readonly welcome: Extract<Protocol.Message, { type: "welcome" }>
}

const reasonOf = (error: NodeJS.ErrnoException): ExtConnectError["reason"] =>
  error.code === "ECONNREFUSED"
    ? "refused"
    : /^ERR_TLS|^ERR_SSL|CERT|certificate|SELF_SIGNED/.test(`${error.code ?? ""} ${error.message}`)
      ? "tls"
      : "unreachable"

/** Opens one connection to the Corps served at `options.address`. Interrupting it drops the socket. */
export const dial = (options: DialOptions): Effect.Effect<Dialed, ExtConnectError> =>
  Effect.callback<Dialed, ExtConnectError>((resume) => {
    const address = options.address
    const fail = (reason: ExtConnectError["reason"], detail: string) => new ExtConnectError({ address, reason, detail })
    const where = parseAddress(address)
    if (where === undefined) {
      resume(Effect.fail(fail("unreachable", "not a host:port address")))
      return
    }
    let done = false
    const conn: Net.Socket =
      options.tls === undefined
        ? NetModule.createConnection({ host: where.host, port: where.port })
        : TLS.connect({
            host: where.host,
            port: where.port,
            ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca })
          })
    const finish = (outcome: Effect.Effect<Dialed, ExtConnectError>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resume(outcome)
    }
    const failWith = (error: ExtConnectError) => {
      conn.destroy()
      finish(Effect.fail(error))
    }
    const timer = setTimeout(
      () => failWith(fail("unreachable", `no answer within ${options.timeoutMillis} ms`)),
      options.timeoutMillis
    )
    conn.on("error", (error: NodeJS.ErrnoException) => failWith(fail(reasonOf(error), messageOf(error))))
    conn.once(options.tls === undefined ? "connect" : "secureConnect", () => {
      conn.setNoDelay(true)
      conn.pause()
      Handshake.dial(conn, options.secret, Protocol.GREETING).then(control, (error: Error) =>
        failWith(
          fail(
            error instanceof Handshake.HandshakeRefused
              ? error.reason === "wrong-secret"
                ? "authentication"
                : "protocol"
              : "unreachable",
            messageOf(error)
          )
        )
      )
    })
    const link = {
      heartbeatMillis: options.heartbeatMillis ?? DEFAULT_HEARTBEAT_MILLIS,
      heartbeatTimeoutMillis: options.heartbeatTimeoutMillis ?? DEFAULT_HEARTBEAT_TIMEOUT_MILLIS,
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES
    }
    const control = () => {
      const reader = new FrameReader(
        link.maxFrameBytes,
        (kind, body) => {
          if (done) return
          const message = kind === CONTROL ? Protocol.decode(body) : undefined
          if (message === undefined) return failWith(fail("protocol", "the server sent a malformed control frame"))
          if (message.type === "error") return failWith(fail("protocol", message.reason))
          if (message.type !== "welcome") return failWith(fail("protocol", `unexpected ${message.type} message`))
          if (message.protocol !== Protocol.PROTOCOL)
            return failWith(
              fail("protocol", `the server speaks protocol ${message.protocol}, this program ${Protocol.PROTOCOL}`)
            )
          conn.removeAllListeners("data")
          conn.removeAllListeners("error")
          conn.removeAllListeners("close")
          conn.pause()
          const opened = fromSocket(conn, { ...link, leftover: reader.take(), peer: `program at ${address}` })
          finish(Effect.succeed({ link: opened, welcome: message }))
        },
        (reason) => failWith(fail("protocol", `the server sent ${reason}`))
      )
      conn.on("data", (chunk: Buffer) => reader.push(chunk))
      conn.once("close", () => failWith(fail("protocol", "the server closed the connection before its welcome")))
      writeFrame(
        conn,
        CONTROL,
        Protocol.encode({
          type: "hello",
          protocol: Protocol.PROTOCOL,
          corps: options.corps,
          ...(options.describe === true ? { describe: true } : {})
        })
      )
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

/**
 * The caller's side of a `corps host` connection: connect, authenticate,
 * greet, ask for an Env, and wait until its process holds the socket; the
 * socket then becomes the Env's call link (src/node/transport/Socket.ts).
 */
import * as Net from "node:net"
import * as TLS from "node:tls"
import { Effect } from "effect"
import { HostConnectError, HostProtocolError } from "../CorpsError.ts"
import * as Handshake from "../internal/auth.ts"
import { messageOf } from "../internal/message.ts"
import type { EnvInit } from "../node/envInit.ts"
import type { Link } from "../node/transport/Link.ts"
import { CONTROL, FrameReader, fromSocket, writeFrame } from "../node/transport/Socket.ts"
import * as Protocol from "./protocol.ts"
import type { Collected } from "./shipping.ts"

/** A `host:port` address, split; `undefined` when it is not one. */
export const parseAddress = (address: string): { readonly host: string; readonly port: number } | undefined => {
  const match = /^(.+):(\d{1,5})$/.exec(address)
  if (match === null) return undefined
  const port = Number(match[2])
  if (port < 1 || port > 65535) return undefined
  // An IPv6 literal is written in brackets (`[::1]:7400`).
  const host = match[1]!.replace(/^\[(.*)\]$/, "$1")
  return { host, port }
}

/** Options of {@link dial}. */
export interface DialOptions {
  readonly address: string
  readonly secret: string
  /** Speak TLS, verifying the daemon's certificate against `ca` (the system's CAs when absent). */
  readonly tls?: { readonly ca?: string | undefined } | undefined
  readonly connectTimeoutMillis: number
  readonly link: Protocol.LinkSettings
  readonly init: EnvInit
  readonly maxOldSpaceSizeMb?: number | undefined
  /** The program, collected for shipping (shipping.ts); absent: the daemon imports `init.module` as is. */
  readonly shipped?: Collected | undefined
}

/** A started host Env: its link, and how to drop it at once. */
export interface Dialed {
  readonly link: Link
  readonly socket: Net.Socket
}

type DialError = HostConnectError | HostProtocolError

const phases = {
  connect: "connecting",
  handshake: "proving the secret",
  control: "waiting for the daemon to start the Env's process"
} as const

const connectReason = (error: NodeJS.ErrnoException): HostConnectError["reason"] =>
  error.code === "ECONNREFUSED"
    ? "refused"
    : /^ERR_TLS|^ERR_SSL|CERT|certificate|SELF_SIGNED/.test(`${error.code ?? ""} ${error.message}`)
      ? "tls"
      : "unreachable"

/**
 * Connects to the daemon at `options.address` and starts an Env there.
 * Interrupting it drops the connection (the daemon then stops the Env).
 */
export const dial = (options: DialOptions): Effect.Effect<Dialed, DialError> =>
  Effect.callback<Dialed, DialError>((resume) => {
    const host = options.address
    const where = parseAddress(host)
    if (where === undefined) {
      resume(Effect.fail(new HostConnectError({ host, reason: "unreachable", detail: "not a host:port address" })))
      return
    }
    let done = false
    let phase: "connect" | "handshake" | "control" = "connect"
    const conn: Net.Socket =
      options.tls === undefined
        ? Net.createConnection({ host: where.host, port: where.port })
        : TLS.connect({
            host: where.host,
            port: where.port,
            ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca })
          })
    const finish = (outcome: Effect.Effect<Dialed, DialError>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resume(outcome)
    }
    const failWith = (error: DialError) => {
      conn.destroy()
      finish(Effect.fail(error))
    }
    const timer = setTimeout(
      () =>
        failWith(
          new HostConnectError({
            host,
            reason: "unreachable",
            detail: `no answer within ${options.connectTimeoutMillis} ms (${phases[phase]})`
          })
        ),
      options.connectTimeoutMillis
    )
    conn.on("error", (error: NodeJS.ErrnoException) => {
      if (phase === "control") {
        failWith(new HostProtocolError({ host, reason: `connection failed: ${messageOf(error)}` }))
      } else failWith(new HostConnectError({ host, reason: connectReason(error), detail: messageOf(error) }))
    })
    conn.once(options.tls === undefined ? "connect" : "secureConnect", () => {
      phase = "handshake"
      conn.setNoDelay(true)
      conn.pause()
      Handshake.dial(conn, options.secret, Protocol.GREETING).then(control, (error: Error) =>
        failWith(
          new HostConnectError({
            host,
            reason: error instanceof Handshake.HandshakeRefused ? "authentication" : "unreachable",
            detail: messageOf(error)
          })
        )
      )
    })
    const send = (message: Protocol.Message) => writeFrame(conn, CONTROL, Protocol.encode(message))
    const shipped = options.shipped
    const control = () => {
      phase = "control"
      let greeted = false
      let started = false
      const start = () => {
        started = true
        send({
          type: "start",
          init: options.init,
          link: options.link,
          ...(options.maxOldSpaceSizeMb === undefined ? {} : { maxOldSpaceSizeMb: options.maxOldSpaceSizeMb }),
          ...(shipped === undefined ? {} : { bundle: shipped.manifest.hash })
        })
      }
      const reader = new FrameReader(
        options.link.maxFrameBytes,
        (kind, body) => {
          if (done) return
          const message = kind === CONTROL ? Protocol.decode(body) : undefined
          if (message === undefined)
            return failWith(new HostProtocolError({ host, reason: "the daemon sent a malformed control frame" }))
          if (message.type === "error")
            return failWith(
              new HostProtocolError({
                host,
                reason: message.reason,
                ...(message.package === undefined ? {} : { package: message.package })
              })
            )
          if (message.type === "hello" && !greeted) {
            if (message.protocol !== Protocol.PROTOCOL)
              return failWith(
                new HostProtocolError({
                  host,
                  reason: `the daemon speaks protocol ${message.protocol}, this caller ${Protocol.PROTOCOL}`
                })
              )
            greeted = true
            if (shipped === undefined) return start()
            // The daemon answers which files of the program its cache lacks.
            send({ type: "manifest", manifest: shipped.manifest })
            return
          }
          if (message.type === "missing" && greeted && shipped !== undefined && !started) {
            for (const hash of message.hashes) {
              const bytes = typeof hash === "string" ? shipped.source(hash) : undefined
              if (bytes === undefined)
                return failWith(new HostProtocolError({ host, reason: `the daemon asked for an unknown file ${hash}` }))
              send({ type: "file", hash, bytes })
            }
            return start()
          }
          if (message.type === "attached" && greeted) {
            conn.removeAllListeners("data")
            conn.removeAllListeners("error")
            conn.pause()
            const link = fromSocket(conn, { ...options.link, leftover: reader.take(), peer: `host ${host}` })
            return finish(Effect.succeed({ link, socket: conn }))
          }
          failWith(new HostProtocolError({ host, reason: `unexpected ${message.type} message from the daemon` }))
        },
        (reason) => failWith(new HostProtocolError({ host, reason: `the daemon sent ${reason}` }))
      )
      conn.on("data", (chunk: Buffer) => reader.push(chunk))
      conn.once("close", () => {
        if (!done)
          failWith(new HostProtocolError({ host, reason: "the daemon closed the connection before the Env started" }))
      })
      send({ type: "hello", protocol: Protocol.PROTOCOL })
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

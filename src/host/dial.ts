/**
 * The caller's side of a `corps host` connection: connect, authenticate,
 * greet, ask for an Env, and wait until its process holds the socket; the
 * socket then becomes the Env's call link (src/node/transport/Socket.ts).
 */
import type * as Net from "node:net"
import { Effect } from "effect"
import { HostConnectError, HostProtocolError } from "../CorpsError.ts"
import type { EnvInit } from "../node/envInit.ts"
import { dialControl } from "../node/transport/dial.ts"
import type { Link } from "../node/transport/Link.ts"
import * as Protocol from "./protocol.ts"
import type { Collected } from "./shipping.ts"

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

/**
 * Connects to the daemon at `options.address` and starts an Env there.
 * Interrupting it drops the connection (the daemon then stops the Env).
 */
export const dial = (options: DialOptions): Effect.Effect<Dialed, DialError> => Effect.suspend(() => dialHost(options))

const dialHost = (options: DialOptions): Effect.Effect<Dialed, DialError> => {
  const host = options.address
  const shipped = options.shipped
  // Per dial: a retried dial starts its exchange afresh.
  let greeted = false
  let started = false
  return dialControl<Protocol.Message, Dialed, DialError>({
    address: host,
    secret: options.secret,
    greeting: Protocol.GREETING,
    tls: options.tls,
    timeoutMillis: options.connectTimeoutMillis,
    maxFrameBytes: options.link.maxFrameBytes,
    peer: "daemon",
    awaiting: "the Env started",
    decode: Protocol.decode,
    hello: { type: "hello", protocol: Protocol.PROTOCOL },
    fault: (fault) => {
      switch (fault.kind) {
        case "address":
          return new HostConnectError({ host, reason: "unreachable", detail: "not a host:port address" })
        case "timeout":
          return new HostConnectError({
            host,
            reason: "unreachable",
            detail: `no answer within ${options.connectTimeoutMillis} ms (${phases[fault.phase]})`
          })
        case "socket":
          return fault.phase === "control"
            ? new HostProtocolError({ host, reason: `connection failed: ${fault.detail}` })
            : new HostConnectError({ host, reason: fault.reason, detail: fault.detail })
        case "handshake":
          return new HostConnectError({
            host,
            reason: fault.refused === undefined ? "unreachable" : "authentication",
            detail: fault.detail
          })
        case "control":
          return new HostProtocolError({ host, reason: fault.detail })
      }
    },
    control: (message, { send, fail, open }) => {
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
      if (message.type === "error")
        return fail(
          new HostProtocolError({
            host,
            reason: message.reason,
            ...(message.package === undefined ? {} : { package: message.package })
          })
        )
      if (message.type === "hello" && !greeted) {
        if (message.protocol !== Protocol.PROTOCOL)
          return fail(
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
            return fail(new HostProtocolError({ host, reason: `the daemon asked for an unknown file ${hash}` }))
          send({ type: "file", hash, bytes })
        }
        return start()
      }
      if (message.type === "attached" && greeted)
        return open({ ...options.link, peer: `host ${host}` }, (link, socket) => ({ link, socket }))
      fail(new HostProtocolError({ host, reason: `unexpected ${message.type} message from the daemon` }))
    }
  })
}

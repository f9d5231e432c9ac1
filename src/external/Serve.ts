/**
 * `Corps.serve`: exposes Workers of a running Corps at an address, for
 * `Corps.connect` in other programs and for `corps call` (docs/external.md).
 *
 * Each accepted connection proves the shared secret (src/internal/auth.ts),
 * says hello, and is welcomed with the list of served Workers and their
 * method hashes; the dialer checks its contracts against them. The socket
 * then carries calls both ways (Peer.ts) until it closes. Closing the Layer
 * stops listening and closes every connection: calls in flight on the other
 * side end with `CallLost`.
 */
import * as Net from "node:net"
import * as TLS from "node:tls"
import { Context, Effect, Layer, Scope } from "effect"
import type { ServedIds as Ids } from "../Corps.ts"
import { ExtServeError } from "../CorpsError.ts"
import { parseListenAddress } from "../internal/address.ts"
import type { HandleBase } from "../internal/handle.ts"
import { messageOf } from "../internal/message.ts"
import { secretOfOptions } from "../internal/secret.ts"
import { acceptAuthenticated } from "../node/transport/accept.ts"
import {
  CONTROL,
  DEFAULT_HEARTBEAT_MILLIS,
  DEFAULT_HEARTBEAT_TIMEOUT_MILLIS,
  DEFAULT_MAX_FRAME_BYTES,
  FrameReader,
  fromSocket,
  writeFrame
} from "../node/transport/Socket.ts"
import type { AnyWorker } from "../Worker.ts"
import { describe, hashes } from "./contract.ts"
import { type Exposed, localCorps, open } from "./Peer.ts"
import * as Protocol from "./protocol.ts"

/**
 * Options of `Corps.serve`.
 *
 * @since 0.4.0
 * @category models
 */
export interface ServeOptions {
  /** `host:port` to listen on; port 0 picks a free port (read it from {@link ServedAt}). */
  readonly listen: string
  /** The shared secret every caller must prove. Give this or `secretFile`. */
  readonly secret?: string | undefined
  /** A file holding the secret (a trailing newline is ignored). */
  readonly secretFile?: string | undefined
  /** Serve over TLS with this key and certificate (PEM contents). */
  readonly tls?: { readonly key: string; readonly cert: string } | undefined
  /** A ping after this long without sending; default 1000 ms. */
  readonly heartbeatMillis?: number | undefined
  /** A connection silent for this long is closed; default 15000 ms. */
  readonly heartbeatTimeoutMillis?: number | undefined
}

/**
 * Where a `Corps.serve` Layer listens (the port it was given, or the one
 * picked for port 0).
 *
 * @since 0.4.0
 * @category services
 */
export class ServedAt extends Context.Service<ServedAt, { readonly address: string }>()("effect-corps/ServedAt") {}

const MAX_CONTROL_BYTES = 1024 * 1024
const SETUP_TIMEOUT_MS = 10_000

/**
 * The Layer of `Corps.serve` (see there).
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = <const Workers extends ReadonlyArray<AnyWorker>>(
  workers: Workers,
  options: ServeOptions
): Layer.Layer<ServedAt, ExtServeError, Ids<Workers[number]>> =>
  Layer.effect(
    ServedAt,
    Effect.gen(function* () {
      const listen = options.listen
      const failure = (reason: string) => new ExtServeError({ listen, reason })
      const where = parseListenAddress(listen)
      if (where === undefined) return yield* failure("not a host:port address")
      const host = where.host
      const secret = yield* secretOfOptions(options).pipe(Effect.mapError(failure))
      const exposed = new Map<string, Exposed>()
      for (const worker of workers) {
        const handle = yield* worker as unknown as Effect.Effect<HandleBase>
        exposed.set(worker.key, {
          worker,
          corps: handle.corps,
          target: (key) => handle.instance(key).target
        })
      }
      const scope = yield* Effect.scope
      const label = [...exposed.values()][0]?.corps ?? "served"
      const linkSettings = {
        heartbeatMillis: options.heartbeatMillis ?? DEFAULT_HEARTBEAT_MILLIS,
        heartbeatTimeoutMillis: options.heartbeatTimeoutMillis ?? DEFAULT_HEARTBEAT_TIMEOUT_MILLIS,
        maxFrameBytes: DEFAULT_MAX_FRAME_BYTES
      }
      const welcome = (describing: boolean): Protocol.Message => ({
        type: "welcome",
        protocol: Protocol.PROTOCOL,
        corps: localCorps(),
        workers: [...exposed.values()].map((e) => ({
          name: e.worker.key,
          corps: e.corps,
          hashes: hashes(e.worker),
          ...(describing ? { methods: describe(e.worker) } : {})
        }))
      })
      const sockets = new Set<Net.Socket>()
      const runFork = Effect.runForkWith(yield* Effect.context<never>())
      const onConnection = (conn: Net.Socket) => {
        const remote = `${conn.remoteAddress ?? "?"}:${conn.remotePort ?? "?"}`
        sockets.add(conn)
        conn.once("close", () => sockets.delete(conn))
        const refuse = (reason: string) => {
          runFork(Effect.logWarning(`effect-corps: Corps.serve on ${listen} refused ${remote}: ${reason}`))
          conn.destroy()
        }
        acceptAuthenticated(conn, {
          secret,
          greeting: Protocol.GREETING,
          setupMillis: SETUP_TIMEOUT_MS,
          late: "no hello in time",
          refuse,
          authenticated: (settled) => {
            const reader = new FrameReader(
              MAX_CONTROL_BYTES,
              (kind, body) => {
                conn.removeAllListeners("data")
                conn.pause()
                settled()
                const message = kind === CONTROL ? Protocol.decode(body) : undefined
                if (message === undefined || message.type !== "hello") return refuse("malformed hello")
                if (message.protocol !== Protocol.PROTOCOL) {
                  writeFrame(
                    conn,
                    CONTROL,
                    Protocol.encode({
                      type: "error",
                      reason: `protocol ${message.protocol} is not spoken here (this program speaks ${Protocol.PROTOCOL})`
                    })
                  )
                  conn.end()
                  return
                }
                writeFrame(conn, CONTROL, Protocol.encode(welcome(message.describe === true)))
                const link = fromSocket(conn, {
                  ...linkSettings,
                  leftover: reader.take(),
                  peer: `program at ${remote}`
                })
                runFork(open({ link, name: `program at ${remote}`, exposed, peerCorps: message.corps, label }, scope))
              },
              (reason) => refuse(reason)
            )
            conn.on("data", (chunk: Buffer) => reader.push(chunk))
            conn.resume()
          }
        })
      }
      const server: Net.Server =
        options.tls === undefined
          ? Net.createServer(onConnection)
          : TLS.createServer({ key: options.tls.key, cert: options.tls.cert }, onConnection)
      const address = yield* Effect.callback<string, ExtServeError>((resume) => {
        server.once("error", (error) => resume(Effect.fail(failure(messageOf(error)))))
        server.listen(where.port, host, () => {
          const bound = server.address() as Net.AddressInfo
          resume(Effect.succeed(`${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`))
        })
      })
      yield* Scope.addFinalizer(
        scope,
        Effect.promise(
          () =>
            new Promise<void>((resolve) => {
              server.close(() => resolve())
              for (const socket of sockets) socket.destroy()
            })
        )
      )
      return ServedAt.of({ address })
    })
  )

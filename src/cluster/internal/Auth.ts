/**
 * Shared-secret authentication for the cluster's runner sockets.
 *
 * `NodeClusterSocket.layer` has no hook for credentials, but it is built from
 * two replaceable services: the `SocketServer` runners accept on, and the
 * `Runners.RpcClientProtocol` every process dials runners with. Both are
 * replaced here by versions that run a challenge–response handshake on the
 * raw TCP socket before the RPC protocol sees a single byte:
 *
 * ```
 * runner → dialer   CORPS-CLUSTER/1 <nonceR>\n
 * dialer → runner   <nonceD> <HMAC(secret, "dialer|nonceR|nonceD")>\n
 * runner → dialer   OK <HMAC(secret, "runner|nonceR|nonceD")>\n
 * ```
 *
 * Nonces are fresh per connection (no replay), both sides prove the secret
 * (a fake runner is refused too), the secret never travels, and comparisons
 * are constant-time. A connection that sends anything else, too much, or
 * nothing within the handshake timeout is logged and destroyed: no request
 * from it reaches the RPC server. The traffic itself is not encrypted unless
 * TLS is configured (see docs/cluster.md).
 *
 * After the handshake, an authenticated peer is still held to the framing:
 * a frame the RPC parser rejects (garbage, a frame over the size limit) gets
 * one error frame back, then the peer is dropped (effect's socket protocol
 * would answer every later chunk with another error frame and keep the
 * connection); a frame left incomplete for {@link FRAME_TIMEOUT_MS} drops the
 * peer too (it would otherwise hold the connection and its buffer forever).
 */
import * as Net from "node:net"
import { connect as TlsConnect } from "node:tls"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Context, Effect, Fiber, Layer, Option, Redacted } from "effect"
import * as Runners from "effect/cluster/Runners"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as RpcClient from "effect/rpc/RpcClient"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import * as RpcServer from "effect/rpc/RpcServer"
import * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"
import * as Handshake from "../../internal/auth.ts"

const GREETING = "CORPS-CLUSTER/1"
/** A peer that has not completed the handshake by then is dropped. */
const HANDSHAKE_TIMEOUT_MS = Handshake.HANDSHAKE_TIMEOUT_MS
/**
 * An authenticated peer that leaves a frame incomplete this long after its
 * first byte is dropped. Frames are at most 16 MiB (effect's SchemaBinary
 * default), which takes a fraction of this on any network runners share.
 */
const FRAME_TIMEOUT_MS = 10_000

/** The runner's half of the handshake. Resolves when the dialer proved the secret. */
export const acceptHandshake = (conn: Net.Socket, secret: string): Promise<void> =>
  Handshake.accept(conn, secret, GREETING)

/** The dialer's half of the handshake. Resolves when the runner proved the secret. */
export const dialHandshake = (conn: Net.Socket, secret: string): Promise<void> => Handshake.dial(conn, secret, GREETING)

const remoteOf = (conn: Net.Socket): string => `${conn.remoteAddress ?? "?"}:${conn.remotePort ?? "?"}`

/**
 * The runners' `SocketServer`, accepting only connections that complete the
 * handshake. Refused connections are logged (warning, with the peer address
 * and the reason) and destroyed.
 *
 * @since 0.1.0
 * @category layers
 */
const layerSocketServer = (
  secret: Redacted.Redacted<string>,
  tls?: Tls | undefined,
  frameTimeoutMs: number = FRAME_TIMEOUT_MS
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError, ShardingConfig.ShardingConfig> =>
  Layer.effect(SocketServer.SocketServer)(
    Effect.gen(function* () {
      const inner = yield* SocketServer.SocketServer
      const key = Redacted.value(secret)
      return SocketServer.SocketServer.of({
        address: inner.address,
        run: <R, E, _>(handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>) =>
          inner.run((socket) =>
            Effect.gen(function* () {
              const conn = yield* NodeSocket.NetSocket
              const refused = yield* Effect.tryPromise(() => acceptHandshake(conn, key)).pipe(
                Effect.as(undefined),
                Effect.catch((error) => Effect.succeed(error.cause instanceof Error ? error.cause.message : "refused"))
              )
              if (refused !== undefined) {
                yield* Effect.logWarning(`cluster: refused connection from ${remoteOf(conn)}: ${refused}`)
                conn.destroy()
                return
              }
              const peer: Peer = { address: remoteOf(conn), failed: undefined }
              return yield* handler(guardSocket(socket, peer, frameTimeoutMs)).pipe(
                Effect.provideService(CurrentPeer, peer)
              )
            })
          ) as Effect.Effect<never, SocketServer.SocketServerError, R>
      })
    })
  ).pipe(Layer.provide(tls === undefined ? NodeClusterSocket.layerSocketServer : layerTlsServer(tls)))

/** One authenticated connection, as the guards see it. */
interface Peer {
  readonly address: string
  /** Why the RPC parser rejected this peer's bytes; it is dropped at the next read. */
  failed: string | undefined
}

/**
 * The connection whose RPC parser is being made. effect's socket protocol
 * makes one parser per connection, synchronously, in the connection's fiber:
 * that fiber's context is how a parser finds its peer.
 */
const CurrentPeer = Context.Reference<Peer | undefined>("effect-corps/cluster/CurrentPeer", {
  defaultValue: () => undefined
})

/**
 * The RPC serialization of runners' socket servers: a connection's parser
 * that rejects a frame marks its peer as failed (the protocol then sends the
 * one error frame) and reads nothing more from it.
 */
const layerGuardedSerialization: Layer.Layer<
  RpcSerialization.RpcSerialization,
  never,
  RpcSerialization.RpcSerialization
> = Layer.effect(RpcSerialization.RpcSerialization)(
  Effect.map(Effect.service(RpcSerialization.RpcSerialization), (inner) =>
    RpcSerialization.RpcSerialization.of({
      ...inner,
      makeUnsafe: () => {
        const parser = inner.makeUnsafe()
        const peer = Fiber.getCurrent()?.getRef(CurrentPeer)
        if (peer === undefined) return parser
        return {
          encode: (message) => parser.encode(message),
          decode: (data) => {
            if (peer.failed !== undefined) return []
            try {
              return parser.decode(data)
            } catch (cause) {
              peer.failed = `malformed frame: ${cause instanceof Error ? cause.message.split("\n")[0] : String(cause)}`
              throw cause
            }
          }
        }
      }
    })
  )
)

/**
 * Where a stream of SchemaBinary frames stands (`<uvarint length><body>`…):
 * only headers are read, bodies are skipped, so it costs next to nothing.
 */
class FrameTracker {
  /** Body bytes of the current frame still to come. */
  private remaining = 0
  private headerBytes = 0
  private headerValue = 0
  private headerScale = 1
  /** When the current incomplete frame began (ms), or undefined between frames. */
  since: number | undefined = undefined

  feed(chunk: Uint8Array | string): void {
    if (typeof chunk === "string") return
    let pos = 0
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - pos)
        this.remaining -= take
        pos += take
        continue
      }
      const byte = chunk[pos++]!
      this.headerValue += (byte & 0x7f) * this.headerScale
      this.headerBytes++
      if ((byte & 0x80) === 0) {
        this.remaining = this.headerValue
        this.headerBytes = 0
        this.headerValue = 0
        this.headerScale = 1
      } else {
        this.headerScale *= 128
      }
    }
    const partial = this.remaining > 0 || this.headerBytes > 0
    if (!partial) this.since = undefined
    else if (this.since === undefined) this.since = Date.now()
  }
}

/** Ends the connection: the socket protocol takes a close as a normal end, and its scope closes the socket. */
const drop = (peer: Peer, reason: string) =>
  Effect.logWarning(`cluster: dropped connection from ${peer.address}: ${reason}`).pipe(
    Effect.andThen(
      Effect.fail(new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: 1008, closeReason: reason }) }))
    )
  )

/**
 * `socket`, whose reads end the connection once its parser rejected a frame
 * (after the one error frame was written: the protocol reads again only then),
 * or when a frame stays incomplete for `frameTimeoutMs`.
 */
const guardSocket = (socket: Socket.Socket, peer: Peer, frameTimeoutMs: number): Socket.Socket =>
  Socket.make({
    writer: socket.writer,
    reader: Effect.map(socket.reader, (reader) => {
      const frames = new FrameTracker()
      const record = <A extends ReadonlyArray<Uint8Array | string>>(chunks: A): A => {
        for (const chunk of chunks) frames.feed(chunk)
        return chunks
      }
      const pull: typeof reader.pull = Effect.suspend(() => {
        if (peer.failed !== undefined) return drop(peer, peer.failed)
        if (frames.since === undefined) return Effect.map(reader.pull, record)
        const left = Math.max(0, frames.since + frameTimeoutMs - Date.now())
        return Effect.map(
          Effect.timeoutOrElse(reader.pull, {
            duration: left,
            orElse: () => drop(peer, `frame incomplete for ${frameTimeoutMs} ms`)
          }),
          record
        )
      })
      return { ...reader, pull }
    })
  })

/**
 * The RPC protocol runners serve on: effect's socket-server protocol over
 * {@link layerSocketServer}, with the framing guards above.
 */
export const layerServerProtocol = (
  secret: Redacted.Redacted<string>,
  tls?: Tls | undefined,
  frameTimeoutMs: number = FRAME_TIMEOUT_MS
): Layer.Layer<
  RpcServer.Protocol,
  SocketServer.SocketServerError,
  ShardingConfig.ShardingConfig | RpcSerialization.RpcSerialization
> =>
  RpcServer.layerProtocolSocketServer.pipe(
    Layer.provide(layerGuardedSerialization),
    Layer.provide(layerSocketServer(secret, tls, frameTimeoutMs))
  )

/**
 * TLS settings of runners (shared with `corps host`: src/internal/auth.ts).
 *
 * @since 0.1.0
 * @category models
 */
export type Tls = Handshake.Tls

/**
 * Reads TLS settings from PEM files; undefined when no path is given.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tlsFromFiles = Handshake.tlsFromFiles

/** A TLS socket server on the runner's listen address. */
const layerTlsServer = (
  tls: Tls
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError, ShardingConfig.ShardingConfig> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const config = yield* ShardingConfig.ShardingConfig
      const address = Option.getOrUndefined(Option.orElse(config.runnerListenAddress, () => config.runnerAddress))
      if (address === undefined) return yield* Effect.die("cluster: a runner needs a listen address")
      if (tls.key === undefined || tls.cert === undefined) {
        return yield* Effect.die("cluster: a TLS runner needs a key and a certificate (CORPS_CLUSTER_TLS_KEY, _CERT)")
      }
      return NodeSocketServer.layerTls({ ...address, key: tls.key, cert: tls.cert })
    })
  )

/**
 * How every process dials runners: TCP, then the handshake, then the cluster's
 * RPC protocol with the configured serialization.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClientProtocol = (
  secret: Redacted.Redacted<string>,
  tls?: Tls | undefined
): Layer.Layer<Runners.RpcClientProtocol, never, RpcSerialization.RpcSerialization> =>
  Layer.effect(Runners.RpcClientProtocol)(
    Effect.gen(function* () {
      const serialization = yield* RpcSerialization.RpcSerialization
      const key = Redacted.value(secret)
      return {
        codecFor: serialization.codecFor,
        make: Effect.fnUntraced(function* (address) {
          const socket = yield* NodeSocket.fromDuplex(
            Effect.acquireRelease(
              Effect.tryPromise({
                try: () => dial(address.host, address.port, key, tls),
                catch: (cause) =>
                  new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause }) })
              }),
              (conn) => Effect.sync(() => conn.destroy())
            ),
            { openTimeout: HANDSHAKE_TIMEOUT_MS + 1_000 }
          )
          return yield* RpcClient.makeProtocolSocket().pipe(
            Effect.provideService(Socket.Socket, socket),
            Effect.provideService(RpcSerialization.RpcSerialization, serialization)
          )
        }, Effect.orDie)
      }
    })
  )

/** Connects and authenticates; the returned socket is paused, ready for the RPC protocol. */
const dial = (host: string, port: number, secret: string, tls?: Tls): Promise<Net.Socket> =>
  new Promise((resolve, reject) => {
    // With TLS the runner's certificate is verified (against `ca`) before the handshake starts.
    const conn: Net.Socket =
      tls === undefined
        ? Net.createConnection({ host, port })
        : TlsConnect({ host, port, ...(tls.ca === undefined ? {} : { ca: tls.ca }) })
    conn.setNoDelay(true)
    const fail = (error: Error) => {
      conn.destroy()
      reject(error)
    }
    conn.once("error", fail)
    conn.once(tls === undefined ? "connect" : "secureConnect", () => {
      conn.pause()
      dialHandshake(conn, secret).then(() => {
        conn.off("error", fail)
        // Until the RPC protocol attaches its own listener, an error must not crash the process.
        conn.on("error", () => {})
        resolve(conn)
      }, fail)
    })
  })

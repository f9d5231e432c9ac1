/**
 * The `corps host` daemon: serves Envs to authenticated callers.
 *
 * Per connection: the shared-secret handshake (src/internal/auth.ts; over
 * TLS when configured), then the control protocol (protocol.ts): `hello`,
 * then `start`, which forks the Env's process (`envMain`) and hands it the
 * connection. With plain TCP the socket itself is passed to the child
 * (`child.send(message, socket)`): calls then flow between the caller and
 * the Env's process with no daemon hop. A TLS socket cannot be passed (its
 * state lives in this process), so the daemon pipes its decrypted bytes to
 * the child over an extra stdio pipe.
 *
 * Each Env is its own child process, so one daemon serves several callers
 * and Corps at once. A child ends when its caller goes away (its link
 * closes: the socket ended, or heartbeats stopped) and when the daemon dies
 * (its IPC channel closes), so nothing outlives either.
 *
 * Nothing a peer sends brings the daemon down: a stranger or a wrong secret
 * is refused and logged, a malformed or oversized frame closes that
 * connection only, and every socket has an error listener.
 *
 * @since 0.4.0
 */
import { type ChildProcess, fork } from "node:child_process"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { fileURLToPath } from "node:url"
import { Effect, Schema, type Scope } from "effect"
import type * as Handshake from "../internal/auth.ts"
import { messageOf } from "../internal/message.ts"
import { INIT_VARIABLE } from "../node/envInit.ts"
import { acceptAuthenticated } from "../node/transport/accept.ts"
import { CONTROL, DEFAULT_MAX_FRAME_BYTES, FrameReader, writeFrame } from "../node/transport/Socket.ts"
import * as Protocol from "./protocol.ts"
import { resolveModule } from "./resolve.ts"
import * as Shipping from "./shipping.ts"

// From source (`.ts`, run by Node 24) the entry is `envMain.ts`; from the built package it is `envMain.js`.
const entry = fileURLToPath(
  new URL(import.meta.url.endsWith(".ts") ? "../node/envMain.ts" : "../node/envMain.js", import.meta.url)
)

/** A connection that has not sent `start` this long after connecting is dropped. */
const SETUP_TIMEOUT_MS = 30_000
/** Control messages are small: a larger one before `start` is not from a caller of ours. */
const MAX_CONTROL_BYTES = 16 * 1024 * 1024

/**
 * The daemon could not start: its address is taken or invalid, its TLS
 * settings are incomplete.
 *
 * @since 0.4.0
 * @category errors
 */
export class HostDaemonError extends Schema.TaggedError<HostDaemonError>()("HostDaemonError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `corps host: ${this.reason}`
  }
}

/**
 * Options of {@link start}.
 *
 * @since 0.4.0
 * @category models
 */
export interface DaemonOptions {
  /** Interface to listen on (default all: `0.0.0.0`). */
  readonly host?: string | undefined
  /** TCP port; 0 picks a free one (see {@link Daemon.port}). */
  readonly port: number
  /** The shared secret callers must prove. */
  readonly secret: string
  /** TLS key and certificate: the daemon then speaks TLS only. */
  readonly tls?: Handshake.Tls | undefined
  /** Where shipped code is cached (per hash). */
  readonly cacheDir: string
  /** Largest control frame accepted before `start` (default 16 MiB) and the Envs' default link limit. */
  readonly maxFrameBytes?: number | undefined
}

/**
 * A running daemon.
 *
 * @since 0.4.0
 * @category models
 */
export interface Daemon {
  readonly host: string
  readonly port: number
  /** The Env processes running now. */
  readonly children: () => number
  /** Connections refused so far (wrong secret, strangers, malformed frames). */
  readonly refused: () => number
}

/**
 * Starts a daemon that serves until the scope closes; closing it stops
 * listening and kills every Env process it started.
 *
 * @since 0.4.0
 * @category constructors
 */
export const start = (options: DaemonOptions): Effect.Effect<Daemon, HostDaemonError, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const runFork = Effect.runForkWith(context)
    const log = (level: "info" | "warning", message: string) => {
      runFork(level === "info" ? Effect.logInfo(message) : Effect.logWarning(message))
    }
    const tls = options.tls
    if (tls !== undefined && (tls.key === undefined || tls.cert === undefined)) {
      return yield* new HostDaemonError({ reason: "TLS needs both a key and a certificate (--tls-key, --tls-cert)" })
    }
    const cache = yield* Shipping.openCache(options.cacheDir).pipe(
      Effect.mapError((error) => new HostDaemonError({ reason: `cache: ${error.message}` }))
    )
    const children = new Set<ChildProcess>()
    let refused = 0
    const refuse = (conn: Net.Socket, remote: string, reason: string) => {
      refused++
      log("warning", `corps host: refused ${remote}: ${reason}`)
      conn.destroy()
    }

    const onConnection = (conn: Net.Socket) => {
      const remote = `${conn.remoteAddress ?? "?"}:${conn.remotePort ?? "?"}`
      acceptAuthenticated(conn, {
        secret: options.secret,
        greeting: Protocol.GREETING,
        setupMillis: SETUP_TIMEOUT_MS,
        late: "no Env asked for in time",
        refuse: (reason) => refuse(conn, remote, reason),
        authenticated: (settled) => session(conn, remote, settled)
      })
    }

    /** The control exchange of one authenticated connection, up to the hand-over of its socket. */
    const session = (conn: Net.Socket, remote: string, started: () => void) => {
      let greeted = false
      let manifest: Shipping.Manifest | undefined
      let expected = new Set<string>()
      let received = 0
      let over = false
      const send = (message: Protocol.Message) => writeFrame(conn, CONTROL, Protocol.encode(message))
      /** Tells the caller why, then drops it. */
      const reject = (reason: string, logged: string = reason, pkg?: string) => {
        over = true
        send({ type: "error", reason, ...(pkg === undefined ? {} : { package: pkg }) })
        conn.end()
        refused++
        log("warning", `corps host: refused ${remote}: ${logged}`)
      }
      const attempt = <A, E extends { readonly message: string }>(effect: Effect.Effect<A, E>) =>
        Effect.runPromise(Effect.result(effect))
      // Messages are handled one after the other: storing a file is asynchronous.
      let chain: Promise<void> = Promise.resolve()
      const handle = async (message: Protocol.Message): Promise<void> => {
        if (over) return
        switch (message.type) {
          case "hello": {
            if (message.protocol !== Protocol.PROTOCOL) {
              return reject(
                `protocol ${message.protocol} is not spoken here (this daemon speaks ${Protocol.PROTOCOL})`,
                `protocol version ${message.protocol}`
              )
            }
            greeted = true
            send({ type: "hello", protocol: Protocol.PROTOCOL, node: process.version })
            return
          }
          case "manifest": {
            if (!greeted) break
            const decoded = await attempt(Shipping.decodeManifest(message.manifest))
            if (decoded._tag === "Failure") return reject(decoded.failure.message)
            manifest = decoded.success
            // Reads and hashes what is there: a damaged object is dropped and shipped again.
            const missing = await Effect.runPromise(cache.verify(manifest.files.map((file) => file.hash)))
            expected = new Set(missing)
            send({ type: "missing", hashes: missing })
            return
          }
          case "file": {
            if (manifest === undefined || !expected.has(message.hash)) break
            const put = await attempt(cache.put(message.hash, message.bytes))
            if (put._tag === "Failure") return reject(put.failure.message)
            expected.delete(message.hash)
            received++
            return
          }
          case "start": {
            if (!greeted) break
            started()
            if (message.bundle === undefined) return spawn(conn, remote, message, reader.take(), undefined)
            if (manifest === undefined || manifest.hash !== message.bundle) {
              return reject(`start names program ${message.bundle}, which was not shipped on this connection`)
            }
            const lacking = cache.missing(manifest.files.map((file) => file.hash))
            if (lacking.length > 0) return reject(`${lacking.length} shipped files never arrived`)
            const packages = await attempt(Shipping.checkPackages(manifest, Shipping.defaultPackageRoot))
            if (packages._tag === "Failure") {
              return reject(
                `the program imports the package ${packages.failure.package}, which is not installed on this host (looked up from ${packages.failure.from})`,
                `package ${packages.failure.package} missing`,
                packages.failure.package
              )
            }
            const stored = await attempt(cache.putManifest(manifest))
            if (stored._tag === "Failure") return reject(stored.failure.message)
            log(
              "info",
              `corps host: program ${manifest.hash.slice(0, 12)} of ${remote}: ${manifest.files.length} files, ${received} shipped now, ${manifest.files.length - received} from the cache`
            )
            return spawn(conn, remote, message, reader.take(), { manifest, cacheDir: cache.dir })
          }
        }
        reject(`unexpected ${message.type} message`)
      }
      const reader = new FrameReader(
        Math.min(options.maxFrameBytes ?? MAX_CONTROL_BYTES, MAX_CONTROL_BYTES),
        (kind, body) => {
          const message = kind === CONTROL ? Protocol.decode(body) : undefined
          if (message === undefined) {
            over = true
            return refuse(conn, remote, "malformed control frame")
          }
          // From `start` on, the socket's next bytes belong to the Env's process: stop reading now.
          if (message.type === "start") {
            conn.removeAllListeners("data")
            conn.pause()
          }
          chain = chain.then(() => handle(message))
        },
        (reason) => {
          over = true
          refuse(conn, remote, reason)
        }
      )
      conn.on("data", (chunk: Buffer) => reader.push(chunk))
      conn.resume()
    }

    /** Forks the Env's process and hands it the connection. */
    const spawn = (
      conn: Net.Socket,
      remote: string,
      request: Protocol.Start,
      leftover: Buffer,
      bundle: Parameters<typeof resolveModule>[1]
    ) => {
      const piped = tls !== undefined
      const resolved = resolveModule(request.init.module, bundle)
      const init = { ...request.init, module: resolved.module }
      const execArgv = [
        ...process.execArgv,
        ...resolved.execArgv,
        ...(request.maxOldSpaceSizeMb === undefined ? [] : [`--max-old-space-size=${request.maxOldSpaceSizeMb}`])
      ]
      let child: ChildProcess
      try {
        child = fork(entry, [], {
          env: {
            ...process.env,
            ...resolved.env,
            [INIT_VARIABLE]: JSON.stringify(init),
            [Protocol.CHILD_VARIABLE]: "1"
          },
          execArgv,
          stdio: piped ? ["ignore", "inherit", "inherit", "ipc", "pipe"] : ["ignore", "inherit", "inherit", "ipc"]
        })
      } catch (error) {
        writeFrame(conn, CONTROL, Protocol.encode({ type: "error", reason: `cannot start: ${messageOf(error)}` }))
        conn.end()
        return
      }
      children.add(child)
      log(
        "info",
        `corps host: Env ${init.envName}#${init.index} of ${remote} started (pid ${child.pid}, ${bundle === undefined ? "module not shipped" : `program ${bundle.manifest.hash.slice(0, 12)} from the cache`})`
      )
      child.on("error", () => {})
      child.once("exit", (code, signal) => {
        children.delete(child)
        conn.destroy()
        log("info", `corps host: Env ${init.envName}#${init.index} of ${remote} ended (${signal ?? `code ${code}`})`)
      })
      const handover: Protocol.Handover = {
        type: "corps-socket",
        leftover: leftover.toString("base64"),
        // The daemon's own limit caps what a caller asks for.
        link: {
          ...request.link,
          maxFrameBytes: Math.min(request.link.maxFrameBytes, options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES)
        },
        piped
      }
      if (piped) {
        const pipe = child.stdio[4] as Net.Socket
        pipe.on("error", () => {})
        conn.pipe(pipe)
        pipe.pipe(conn)
        conn.once("close", () => pipe.destroy())
        pipe.once("close", () => conn.destroy())
        child.send(handover)
        conn.resume()
      } else {
        child.send(handover, conn, (error) => {
          if (error) {
            log("warning", `corps host: could not hand ${remote}'s connection over: ${messageOf(error)}`)
            child.kill("SIGKILL")
          }
        })
      }
    }

    const server: Net.Server =
      tls === undefined
        ? Net.createServer({ pauseOnConnect: true }, onConnection)
        : Tls.createServer({ key: tls.key!, cert: tls.cert!, ...(tls.ca === undefined ? {} : { ca: tls.ca }) }, (c) =>
            onConnection(c)
          )
    // A TLS client that fails its handshake must not take the server down.
    server.on("tlsClientError", (error: Error, socket: Net.Socket) => {
      refused++
      log("warning", `corps host: refused ${socket.remoteAddress ?? "?"}: TLS: ${messageOf(error)}`)
    })
    const host = options.host ?? "0.0.0.0"
    const address = yield* Effect.callback<Net.AddressInfo, HostDaemonError>((resume) => {
      const onError = (error: Error) => resume(Effect.fail(new HostDaemonError({ reason: messageOf(error) })))
      server.once("error", onError)
      server.listen(options.port, host, () => {
        server.off("error", onError)
        server.on("error", (error) => log("warning", `corps host: ${messageOf(error)}`))
        resume(Effect.succeed(server.address() as Net.AddressInfo))
      })
    })
    yield* Effect.addFinalizer(() =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            for (const child of children) child.kill("SIGKILL")
            server.close(() => resolve())
          })
      )
    )
    return {
      host: address.address,
      port: address.port,
      children: () => children.size,
      refused: () => refused
    }
  })

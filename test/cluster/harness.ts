/**
 * Real runner processes for the cluster tests: started on 127.0.0.1 ports,
 * with a fresh table prefix per test run, and always killed (SIGTERM, then
 * SIGKILL after a timeout: Node 24 sometimes hangs in process.exit).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { type Duration, Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import type * as Cluster from "../../src/cluster/Cluster.ts"
import { dialHandshake } from "../../src/cluster/internal/Auth.ts"
import { databaseUrl } from "./postgres.ts"

export { databaseUrl }

/** PostgreSQL answered the global setup's probe: `describe.runIf(postgres)` around what needs it. */
export const postgres: boolean = inject("postgres")
export const secret = "test-secret-0123456789abcdef"

const corpsCommand = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))
const workersModule = fileURLToPath(new URL("./workers.ts", import.meta.url))

/** One test run's cluster: its table prefix and ledger table. */
export interface Run {
  readonly prefix: string
  readonly ledger: string
  readonly settings: Cluster.Settings
  /** The run's failover timings as the runners' environment variables. */
  readonly env: Readonly<Record<string, string>>
}

/** Explicit failover timings, as the text of their `CORPS_*` variables. */
export interface Timings {
  readonly shardLockExpiration: `${number} ${Duration.Unit}`
  readonly shardLockRefreshInterval: `${number} ${Duration.Unit}`
  readonly runnerHealthCheckInterval: `${number} ${Duration.Unit}`
  readonly refreshAssignmentsInterval: `${number} ${Duration.Unit}`
}

/** A fresh cluster: the `fast` preset, or explicit `timings` for the client (settings) and runners (env) alike. */
export const makeRun = (timings?: Timings): Run => {
  const prefix = `corps_t${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`
  return {
    prefix,
    ledger: `${prefix}_ledger`,
    settings: {
      databaseUrl: Redacted.make(databaseUrl),
      secret: Redacted.make(secret),
      prefix,
      failover: "fast",
      ...timings
    },
    env:
      timings === undefined
        ? {}
        : {
            CORPS_SHARD_LOCK_EXPIRATION: timings.shardLockExpiration,
            CORPS_SHARD_LOCK_REFRESH_INTERVAL: timings.shardLockRefreshInterval,
            CORPS_RUNNER_HEALTH_CHECK_INTERVAL: timings.runnerHealthCheckInterval,
            CORPS_REFRESH_ASSIGNMENTS_INTERVAL: timings.refreshAssignmentsInterval
          }
  }
}

export interface RunnerProcess {
  readonly port: number
  readonly pid: number
  readonly child: ChildProcess
  /** Everything the runner printed. */
  output(): string
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>
}

/** Starts a runner and resolves once it serves (rejects after `timeoutMs`). */
export const startRunner = (
  run: Run,
  port: number,
  options?: {
    readonly secret?: string
    /** Give the runner its secret in this file (`--secret-file`) instead of CORPS_CLUSTER_SECRET. */
    readonly secretFile?: string
    readonly shards?: number
    readonly timeoutMs?: number
    /** More environment for the runner (TLS files, say). */
    readonly env?: Readonly<Record<string, string>>
  }
): Promise<RunnerProcess> =>
  new Promise((resolve, reject) => {
    const args = [corpsCommand, "runner", "--module", workersModule, "--address", `127.0.0.1:${port}`]
    if (options?.shards !== undefined) args.push("--shards", String(options.shards))
    if (options?.secretFile !== undefined) args.push("--secret-file", options.secretFile)
    const { CORPS_CLUSTER_SECRET: _, ...inherited } = process.env
    const child = spawn(process.execPath, args, {
      env: {
        ...inherited,
        CORPS_DATABASE_URL: databaseUrl,
        ...(options?.secretFile === undefined ? { CORPS_CLUSTER_SECRET: options?.secret ?? secret } : {}),
        CORPS_CLUSTER_PREFIX: run.prefix,
        CORPS_CLUSTER_FAILOVER: "fast",
        CORPS_TEST_LEDGER: run.ledger,
        ...run.env,
        ...options?.env
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.add(child)
    let out = ""
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    exited.then(() => children.delete(child))
    const timer = setTimeout(() => {
      reject(new Error(`runner on ${port} did not start:\n${out}`))
    }, options?.timeoutMs ?? 20_000)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes("corps-runner ready")) {
        clearTimeout(timer)
        resolve({ port, pid: child.pid!, child, output: () => out, exited })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`runner on ${port} exited with ${code}:\n${out}`))
    })
  })

const children = new Set<ChildProcess>()

/** Stops a runner: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
export const stop = async (runner: RunnerProcess, graceMs = 3_000): Promise<void> => {
  if (runner.child.exitCode !== null || runner.child.signalCode !== null) return
  runner.child.kill("SIGTERM")
  const timer = setTimeout(() => runner.child.kill("SIGKILL"), graceMs)
  await runner.exited
  clearTimeout(timer)
}

/** Kills every runner still alive (test finalizer). */
export const killAll = async (): Promise<void> => {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done()
          child.once("exit", () => done())
          child.kill("SIGKILL")
        })
    )
  )
}

/** Free-ish ports for one run: a random block, so parallel runs rarely collide. */
export const ports = (n: number): Array<number> => {
  const base = 36_000 + Math.floor(Math.random() * 20_000)
  return Array.from({ length: n }, (_, i) => base + i)
}

/** Drops every table of one test run's cluster (its prefix). */
export const dropTables = (prefix: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const tables = yield* sql<{
      tablename: string
    }>`SELECT tablename FROM pg_tables WHERE tablename LIKE ${`${prefix}%`}`
    for (const { tablename } of tables) yield* sql`DROP TABLE IF EXISTS ${sql(tablename)} CASCADE`
  })

/** A frame header: `n` as an unsigned LEB128 varint. */
export const uvarint = (n: number): Buffer => {
  const bytes: Array<number> = []
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  bytes.push(n)
  return Buffer.from(bytes)
}

/** Counts SchemaBinary frames (`<uvarint length><body>`) in `bytes`. */
export const countFrames = (bytes: Buffer): number => {
  let pos = 0
  let frames = 0
  while (pos < bytes.length) {
    let length = 0
    let scale = 1
    while (pos < bytes.length) {
      const byte = bytes[pos++]!
      length += (byte & 0x7f) * scale
      scale *= 128
      if ((byte & 0x80) === 0) break
    }
    pos += length
    frames++
  }
  return frames
}

/** Connects to a runner's port and proves `secret`; the socket is paused, ready to send frames. */
export const authenticatedSocket = async (port: number, secret: string): Promise<Net.Socket> => {
  const socket = Net.createConnection({ host: "127.0.0.1", port })
  socket.on("error", () => {})
  await new Promise<void>((r) => socket.once("connect", () => r()))
  socket.pause()
  await dialHandshake(socket, secret)
  return socket
}

/**
 * Sends `bytes` to a runner after the handshake and collects every byte until
 * the runner closes the connection: how many frames it answered with.
 */
export const probeRunner = async (
  port: number,
  secret: string,
  bytes: Buffer
): Promise<{ readonly frames: number; readonly closed: true }> => {
  const socket = await authenticatedSocket(port, secret)
  const received: Array<Buffer> = []
  socket.on("data", (d: Buffer) => received.push(d))
  const closed = new Promise<void>((r) => socket.once("close", () => r()))
  socket.resume()
  socket.write(bytes)
  await closed
  return { frames: countFrames(Buffer.concat(received)), closed: true }
}

/**
 * The host Env over TCP loopback (issue 12): one Env process of a
 * `corps host` daemon, 64 calls in flight, side by side with a raw framed
 * TCP ping-pong (one length-prefixed frame per call) and with effect's
 * stock RPC over a socket (`RpcClient` + `RpcServer`, socket protocol,
 * ndjson), each server one process. Then one call at a time (p50 latency),
 * the time from a daemon with an empty cache to the first call answered and
 * with a warm cache, and a call through a handle to a Worker of another
 * host Env (which goes through the caller) against a direct call. With
 * openssl, the same host Env over TLS, where the daemon pipes the bytes.
 *
 * Run alone with `npx node bench/hosts.bench.ts`.
 */
import { type ChildProcess, execFileSync, fork } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Layer, Scope } from "effect"
import { HostDaemon, HostEnv } from "../src/host/index.ts"
import { Corps, type Placement } from "../src/index.ts"
import { driveInFlight } from "./baselines/pool.ts"
import * as IncRpc from "./hosts/rpc.ts"
import { Forwarder, Inc, members, Tally } from "./hosts/workers.ts"
import { median, percentile, throughputSideBySide } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const IN_FLIGHT = 64
const OPS = 20_000
const SEQUENTIAL = 2_000
const SECRET = "bench-host-secret"
const fixtures = new URL("./hosts/workers.ts", import.meta.url).href

const children = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL")
})

/** Forks `script` and resolves with the port it prints. */
const serverProcess = (script: string): Promise<{ readonly port: number; readonly child: ChildProcess }> =>
  new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL(script, import.meta.url)), [], {
      stdio: ["ignore", "pipe", "inherit", "ipc"]
    })
    children.add(child)
    child.stdout!.once("data", (chunk: Buffer) => resolve({ port: Number(chunk.toString().trim()), child }))
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)))
  })

/** A client of the raw framed server: one frame per call, replies matched by id. */
const rawClient = (
  port: number
): Promise<{ readonly call: (n: number) => Promise<number>; readonly close: () => void }> =>
  new Promise((resolve) => {
    const socket = Net.createConnection({ host: "127.0.0.1", port }, () =>
      resolve({ call, close: () => socket.destroy() })
    )
    socket.setNoDelay(true)
    const pending = new Map<number, (n: number) => void>()
    let nextId = 0
    let buffered: Buffer = Buffer.alloc(0)
    socket.on("data", (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      let offset = 0
      while (buffered.length - offset >= 16) {
        const id = buffered.readUInt32BE(offset + 4)
        const n = buffered.readDoubleBE(offset + 8)
        const done = pending.get(id)!
        pending.delete(id)
        done(n)
        offset += 16
      }
      buffered = buffered.subarray(offset)
    })
    const call = (n: number): Promise<number> =>
      new Promise((done) => {
        const id = nextId++ >>> 0
        pending.set(id, done)
        const frame = Buffer.allocUnsafe(16)
        frame.writeUInt32BE(12, 0)
        frame.writeUInt32BE(id, 4)
        frame.writeDoubleBE(n, 8)
        socket.write(frame)
      })
  })

/** Microseconds taken by each of `count` calls made one after the other. */
const latencies = async (count: number, call: (n: number) => Promise<unknown>): Promise<Array<number>> => {
  const out: Array<number> = []
  for (let i = 0; i < 200; i++) await call(i)
  for (let i = 0; i < count; i++) {
    const start = performance.now()
    await call(i)
    out.push((performance.now() - start) * 1000)
  }
  return out
}

/** A self-signed certificate for 127.0.0.1 in `dir`; `undefined` without openssl. */
const selfSigned = (dir: string): { readonly key: string; readonly cert: string } | undefined => {
  const key = join(dir, "key.pem")
  const cert = join(dir, "cert.pem")
  try {
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"].concat([
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        key,
        "-out",
        cert
      ]),
      { stdio: "ignore" }
    )
    return { key, cert }
  } catch {
    return undefined
  }
}

const hostLayer = (placement: Placement.Placement) =>
  Corps.layer(members, { placement, module: fixtures }).pipe(Layer.provide(HostEnv.layer))

/** Runs the host benchmark; records its figures. */
export const runHosts = async (): Promise<void> => {
  process.env.CORPS_HOST_SECRET = SECRET
  const cacheDir = mkdtempSync(join(tmpdir(), "corps-bench-host-"))
  const raw = await serverProcess("./hosts/rawServer.ts")
  const rpcServer = await serverProcess("./hosts/rpc.ts")
  const program = Effect.gen(function* () {
    const daemon = yield* HostDaemon.start({ host: "127.0.0.1", port: 0, secret: SECRET, cacheDir })
    const address = `${daemon.host}:${daemon.port}`
    // A second daemon speaking TLS (a self-signed certificate, when openssl is there): the daemon
    // then pipes each Env's bytes instead of handing its socket over.
    const tls = selfSigned(cacheDir)
    const tlsDaemon =
      tls === undefined
        ? undefined
        : yield* HostDaemon.start({
            host: "127.0.0.1",
            port: 0,
            secret: SECRET,
            cacheDir: join(cacheDir, "tls"),
            tls: { key: readFileSync(tls.key, "utf8"), cert: readFileSync(tls.cert, "utf8") }
          })

    section("Host Env start: a Corps built, first call answered (ms)")
    const firstCall = Effect.gen(function* () {
      const start = performance.now()
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        hostLayer({ envs: { far: { kind: "host", hosts: [address], count: 1 } }, default: "far" }),
        scope
      )
      yield* Effect.provideContext(
        Effect.gen(function* () {
          return yield* (yield* Inc).inc({ n: 1 })
        }),
        context
      )
      const took = performance.now() - start
      yield* Scope.close(scope, undefined as never)
      return took
    })
    figure("hosts.start.coldCacheMs", yield* firstCall, "ms")
    const warm: Array<number> = []
    for (let i = 0; i < 3; i++) warm.push(yield* firstCall)
    figure("hosts.start.warmCacheMs", median(warm), "ms")

    const context = yield* Layer.build(
      hostLayer({
        envs: {
          far: { kind: "host", hosts: [address], count: 1 },
          a: { kind: "host", hosts: [address], count: 1 },
          b: { kind: "host", hosts: [address], count: 1 }
        },
        workers: { Inc: "far", Tally: "a", Forwarder: "b" }
      })
    )
    const { inc, tally, forwarder } = yield* Effect.provideContext(
      Effect.gen(function* () {
        return { inc: yield* Inc, tally: (yield* Tally).instance("t"), forwarder: yield* Forwarder }
      }),
      context
    )
    const incTls =
      tlsDaemon === undefined || tls === undefined
        ? undefined
        : yield* Effect.provideContext(
            Effect.gen(function* () {
              return yield* Inc
            }),
            yield* Layer.build(
              hostLayer({
                envs: {
                  far: {
                    kind: "host",
                    hosts: [`${tlsDaemon.host}:${tlsDaemon.port}`],
                    count: 1,
                    tls: { ca: tls.cert }
                  }
                },
                default: "far"
              })
            )
          )
    const rpc = yield* IncRpc.client(rpcServer.port)
    const rawCalls = yield* Effect.promise(() => rawClient(raw.port))
    const roundOf = (target: typeof inc) => (ops: number) =>
      Effect.runPromise(
        Effect.forEach(
          Array.from({ length: ops }, (_, n) => n),
          (n) => target.inc({ n }),
          { concurrency: IN_FLIGHT, discard: true }
        )
      )
    const hostRound = roundOf(inc)
    const rpcRound = (ops: number) =>
      Effect.runPromise(
        Effect.forEach(
          Array.from({ length: ops }, (_, n) => n),
          (n) => rpc.Inc({ n }),
          { concurrency: IN_FLIGHT, discard: true }
        )
      )
    section(`Host Env over TCP loopback: ${IN_FLIGHT} calls in flight, one server process (calls/s)`)
    const rates = yield* Effect.promise(() =>
      throughputSideBySide(
        {
          host: hostRound,
          raw: (ops) => driveInFlight(ops, IN_FLIGHT, rawCalls.call),
          rpc: rpcRound,
          ...(incTls === undefined ? {} : { tls: roundOf(incTls) })
        },
        { ops: OPS, rounds: 5, warmup: 2 }
      )
    )
    figure("hosts.host.callsPerSec", rates.host!, "calls/s")
    figure("hosts.rawFramed.callsPerSec", rates.raw!, "calls/s")
    figure("hosts.stockRpc.callsPerSec", rates.rpc!, "calls/s")
    ratio("hosts.host.vsStockRpc", rates.host!, rates.rpc!, "≥ 2")
    ratio("hosts.host.vsRawFramed", rates.host!, rates.raw!, "≥ 0.5")
    if (rates.tls !== undefined) {
      figure("hosts.hostTls.callsPerSec", rates.tls, "calls/s")
      ratio("hosts.hostTls.vsHost", rates.tls, rates.host!)
    } else console.log("  (TLS variant skipped: no openssl)")

    section(`One call at a time, ${SEQUENTIAL} calls (µs)`)
    const hostLat = yield* Effect.promise(() => latencies(SEQUENTIAL, (n) => Effect.runPromise(inc.inc({ n }))))
    if (incTls !== undefined) {
      const tlsLat = yield* Effect.promise(() => latencies(SEQUENTIAL, (n) => Effect.runPromise(incTls.inc({ n }))))
      figure("hosts.hostTls.p50Us", percentile(tlsLat, 50), "µs")
    }
    const rawLat = yield* Effect.promise(() => latencies(SEQUENTIAL, rawCalls.call))
    const rpcLat = yield* Effect.promise(() => latencies(SEQUENTIAL, (n) => Effect.runPromise(rpc.Inc({ n }))))
    figure("hosts.host.p50Us", percentile(hostLat, 50), "µs")
    figure("hosts.host.p99Us", percentile(hostLat, 99), "µs")
    figure("hosts.rawFramed.p50Us", percentile(rawLat, 50), "µs")
    figure("hosts.stockRpc.p50Us", percentile(rpcLat, 50), "µs")
    ratio("hosts.host.p50VsRawFramed", percentile(hostLat, 50), percentile(rawLat, 50))

    section("A handle to a Worker of host Env a, called from host Env b (through the caller), p50 (µs)")
    const direct = yield* Effect.promise(() => latencies(SEQUENTIAL, () => Effect.runPromise(tally.add({ by: 1 }))))
    const forwarded = yield* Effect.promise(() =>
      latencies(SEQUENTIAL, () => Effect.runPromise(forwarder.forward({ target: tally, by: 1 })))
    )
    figure("hosts.handle.directP50Us", percentile(direct, 50), "µs")
    figure("hosts.handle.forwardedP50Us", percentile(forwarded, 50), "µs")
    ratio("hosts.handle.forwardedVsDirect", percentile(forwarded, 50), percentile(direct, 50))
    rawCalls.close()
  })
  try {
    await Effect.runPromise(Effect.scoped(program))
  } finally {
    for (const child of [raw.child, rpcServer.child]) child.kill("SIGKILL")
    rmSync(cacheDir, { recursive: true, force: true })
  }
}

if (import.meta.main) {
  setTimeout(() => {
    console.error("bench: time limit reached")
    process.exit(2)
  }, 300_000).unref()
  await runHosts()
  printJson()
  process.exit(0)
}

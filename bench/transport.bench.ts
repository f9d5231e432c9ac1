/**
 * The lean call transport (src/node/transport) against raw Node, measured
 * side by side in one run. Run with `npx node bench/transport.bench.ts`.
 *
 * - threads: `n => n + 1` through 2 worker threads (least-loaded pick), 64 calls in
 *   flight; payload and result go through a small Schema encode + decode on
 *   both sides. Compared with a raw `postMessage` pool that batches every
 *   message of a flush into one `postMessage` (the practical ceiling).
 * - latency: 1 call in flight, p50/p99, against raw `postMessage` ping-pong.
 * - process: the same round trip over 2 forked child processes.
 *
 * This file is also the entry of the threads and processes it starts: the
 * `TRANSPORT_BENCH_ROLE` (environment or workerData) says which server to run.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { parentPort, Worker, workerData } from "node:worker_threads"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { CallLost } from "../src/CorpsError.ts"
import type * as Wire from "../src/internal/wire.ts"
import { leastLoaded } from "../src/node/EnvPool.ts"
import * as Client from "../src/node/transport/Client.ts"
import * as Link from "../src/node/transport/Link.ts"
import * as Server from "../src/node/transport/Server.ts"
import { percentile, throughputSideBySide } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const IN_FLIGHT = 64
const OPS = 100_000
const ROUNDS = 7
const LATENCY_CALLS = 10_000

type Role = "lean" | "raw"
const role: Role | undefined =
  (workerData as { role?: Role } | null)?.role ?? (process.env["TRANSPORT_BENCH_ROLE"] as Role | undefined)

// --- the work: n => n + 1 behind a small Schema on each side ---------------------------------

const Payload = Schema.Struct({ n: Schema.Number })
const Result = Schema.Struct({ n: Schema.Number })
const encodePayload = Schema.encodeSync(Payload)
const decodePayload = Schema.decodeUnknownSync(Payload)
const encodeResult = Schema.encodeSync(Result)
const decodeResult = Schema.decodeUnknownSync(Result)

const leanHandler: Server.Handler<never> = (call) =>
  Effect.sync(() => ({ _tag: "Success", value: encodeResult({ n: decodePayload(call.payload).n + 1 }) }))

// --- Env side ---------------------------------------------------------------------------------

/** Raw server: a batch of `[id, payload]` in, a batch of `[id, result]` out, one message per flush. */
const serveRaw = (
  post: (batch: Array<unknown>) => void,
  on: (cb: (batch: Array<[number, unknown]>) => void) => void
) => {
  let out: Array<unknown> = []
  let scheduled = false
  const flush = () => {
    scheduled = false
    const batch = out
    out = []
    post(batch)
  }
  on((batch) => {
    for (let i = 0; i < batch.length; i++) {
      const [id, payload] = batch[i]!
      out.push([id, encodeResult({ n: decodePayload(payload).n + 1 })])
    }
    if (!scheduled) {
      scheduled = true
      queueMicrotask(flush)
    }
  })
}

if (role === "lean") {
  Effect.runFork(Server.serve(Link.fromParent(), leanHandler))
} else if (role === "raw") {
  if (parentPort !== null) {
    const port = parentPort
    serveRaw(
      (batch) => port.postMessage(batch),
      (cb) => port.on("message", cb)
    )
  } else {
    serveRaw(
      (batch) => process.send!(batch),
      (cb) => process.on("message", cb as (message: unknown) => void)
    )
  }
}

// --- caller side ------------------------------------------------------------------------------

const self = new URL(import.meta.url)

interface Env {
  readonly link: Link.Link
  readonly post: (batch: Array<unknown>) => void
  readonly on: (cb: (batch: Array<[number, unknown]>) => void) => void
  readonly close: () => Promise<void>
}

/** Starts a thread running this file as `role`. */
export const spawnThread = (role: Role): Worker => new Worker(self, { workerData: { role } })

const spawnChild = (role: Role): ChildProcess =>
  fork(fileURLToPath(self), [], { serialization: "advanced", env: { ...process.env, TRANSPORT_BENCH_ROLE: role } })

/** Lean clients over `size` Envs with NodeEnv's least-loaded pick, ready once each has answered one call. */
export const leanPool = async (spawn: () => Link.Link, size: number) => {
  const links = Array.from({ length: size }, spawn)
  const clients = await Effect.runPromise(
    Effect.forEach(links, (link, i) => Client.makeClient(link, { envName: `bench-${i}` }))
  )
  const hosts = clients.map((_, i) => i)
  let turn = 0
  const pick = () => leastLoaded((i) => clients[i]!, hosts, turn++ % hosts.length)
  const call = (n: number): Effect.Effect<number, unknown> =>
    Effect.flatMap(
      Effect.callback<Wire.Exit, CallLost>((resume) =>
        pick().register({ worker: "Bench", key: "", method: "inc", payload: encodePayload({ n }) }, resume)
      ),
      toResult
    )
  await Effect.runPromise(Effect.forEach(clients, (client) => client.call(request(0))))
  const close = () => Effect.runPromise(Effect.forEach(links, (link) => link.close, { discard: true }))
  return { call, close }
}

const request = (n: number): Wire.Call => ({
  worker: "Bench",
  key: "",
  method: "inc",
  payload: encodePayload({ n })
})

const toResult = (exit: Wire.Exit): Effect.Effect<number, unknown> =>
  exit._tag === "Success" ? Effect.succeed(decodeResult(exit.value).n) : Effect.fail(exit)

/** `ops` calls, `IN_FLIGHT` at a time: each lane calls again as soon as its reply is back. */
export const leanRound = (call: (n: number) => Effect.Effect<number, unknown>) => (ops: number) =>
  Effect.runPromise(
    Effect.forEach(
      Array.from({ length: IN_FLIGHT }, (_, lane) => lane),
      (lane) =>
        Effect.gen(function* () {
          for (let i = lane; i < ops; i += IN_FLIGHT) {
            const r = yield* call(i)
            if (r !== i + 1) return yield* Effect.die(`wrong result ${r} for ${i}`)
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
  )

/** A raw pool: least-loaded dispatch, one `postMessage` per Env per flush, promises per call. */
const rawPool = (envs: ReadonlyArray<Pick<Env, "post" | "on">>) => {
  const pending = new Map<number, (r: number) => void>()
  const outboxes = envs.map(() => [] as Array<unknown>)
  const inFlight = envs.map(() => 0)
  let nextId = 0
  let scheduled = false
  const flush = () => {
    scheduled = false
    for (let i = 0; i < envs.length; i++) {
      if (outboxes[i]!.length === 0) continue
      envs[i]!.post(outboxes[i]!)
      outboxes[i] = []
    }
  }
  envs.forEach((env, i) => {
    env.on((batch) => {
      for (const [id, result] of batch) {
        inFlight[i]!--
        const resolve = pending.get(id)!
        pending.delete(id)
        resolve(decodeResult(result).n)
      }
    })
  })

  const call = (n: number): Promise<number> => {
    const id = nextId++
    let best = 0
    for (let i = 1; i < envs.length; i++) if (inFlight[i]! < inFlight[best]!) best = i
    inFlight[best]!++
    outboxes[best]!.push([id, encodePayload({ n })])
    if (!scheduled) {
      scheduled = true
      queueMicrotask(flush)
    }
    return new Promise((resolve) => pending.set(id, resolve))
  }
  return call
}

/** Like {@link leanRound}, for a promise-returning call. */
export const rawRound = (call: (n: number) => Promise<number>) => async (ops: number) => {
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async (_, lane) => {
      for (let i = lane; i < ops; i += IN_FLIGHT) {
        const r = await call(i)
        if (r !== i + 1) throw new Error(`wrong result ${r} for ${i}`)
      }
    })
  )
}

/** A raw batched pool of `size` threads. */
export const rawThreads = (size: number) => {
  const workers = Array.from({ length: size }, () => spawnThread("raw"))
  const call = rawPool(
    workers.map((worker) => ({
      post: (batch: Array<unknown>) => worker.postMessage(batch),
      on: (cb: (batch: Array<[number, unknown]>) => void) => worker.on("message", cb)
    }))
  )
  return { call, close: () => Promise.all(workers.map((w) => w.terminate())).then(() => undefined) }
}

const rawChildren = (size: number) => {
  const children = Array.from({ length: size }, () => spawnChild("raw"))
  const call = rawPool(
    children.map((child) => ({
      post: (batch: Array<unknown>) => child.send(batch),
      on: (cb: (batch: Array<[number, unknown]>) => void) => child.on("message", cb as (message: unknown) => void)
    }))
  )
  return { call, close: () => Promise.all(children.map(killChild)).then(() => undefined) }
}

/** SIGTERM, then SIGKILL after a second: Node 24 sometimes hangs in `process.exit`. */
const killChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), 1000)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })

/** Latency samples (µs) of `calls` sequential calls. */
const sequential = async (call: (n: number) => Promise<number>, calls: number): Promise<Array<number>> => {
  const samples: Array<number> = []
  for (let i = 0; i < calls; i++) {
    const start = performance.now()
    await call(i)
    samples.push((performance.now() - start) * 1000)
  }
  return samples
}

/** Raw `postMessage` ping-pong with one thread: one message per call, no batching. */
const rawPingPong = () => {
  const worker = spawnThread("raw")
  let resolve: ((r: number) => void) | undefined
  worker.on("message", (batch: Array<[number, unknown]>) => resolve!(decodeResult(batch[0]![1]).n))
  const call = (n: number) =>
    new Promise<number>((r) => {
      resolve = r
      worker.postMessage([[n, encodePayload({ n })]])
    })
  return { call, close: () => worker.terminate().then(() => undefined) }
}

/** Runs the transport benchmarks and records their figures (report.ts); does not print the closing JSON. */
export const runTransport = async (): Promise<void> => {
  section(`threads: n => n + 1 with Schema, 2 threads, ${IN_FLIGHT} in flight (ops/s, median of interleaved rounds)`)
  {
    const lean = await leanPool(() => Link.fromWorker(spawnThread("lean")), 2)
    const raw = rawThreads(2)
    try {
      const rates = await throughputSideBySide(
        { lean: leanRound(lean.call), rawBatched: rawRound(raw.call) },
        { ops: OPS, rounds: ROUNDS, warmup: 2 }
      )
      figure("transport.threads.lean.opsPerSec", rates["lean"]!, "ops/s")
      figure("transport.threads.rawBatched.opsPerSec", rates["rawBatched"]!, "ops/s")
      ratio("transport.threads.lean.vsRawBatched", rates["lean"]!, rates["rawBatched"]!, "≥ 0.6")
    } finally {
      await Promise.all([lean.close(), raw.close()])
    }
  }

  section(`threads: latency, 1 call in flight (${LATENCY_CALLS} calls each, interleaved blocks)`)
  {
    const lean = await leanPool(() => Link.fromWorker(spawnThread("lean")), 1)
    const raw = rawPingPong()
    try {
      const leanCall = (n: number) => Effect.runPromise(lean.call(n)) as Promise<number>
      const leanSamples: Array<number> = []
      const rawSamples: Array<number> = []
      await sequential(leanCall, 1000)
      await sequential(raw.call, 1000)
      for (let block = 0; block < 10; block++) {
        leanSamples.push(...(await sequential(leanCall, LATENCY_CALLS / 10)))
        rawSamples.push(...(await sequential(raw.call, LATENCY_CALLS / 10)))
      }
      const leanP50 = percentile(leanSamples, 50)
      const rawP50 = percentile(rawSamples, 50)
      figure("transport.latency.lean.p50Us", leanP50, "µs")
      figure("transport.latency.lean.p99Us", percentile(leanSamples, 99), "µs")
      figure("transport.latency.raw.p50Us", rawP50, "µs")
      figure("transport.latency.raw.p99Us", percentile(rawSamples, 99), "µs")
      ratio("transport.latency.lean.p50VsRaw", leanP50, rawP50, "≤ 1.5")
    } finally {
      await Promise.all([lean.close(), raw.close()])
    }
  }

  section(`process: n => n + 1 with Schema, 2 child processes, ${IN_FLIGHT} in flight (ops/s)`)
  {
    const lean = await leanPool(() => Link.fromChildProcess(spawnChild("lean"), { killTimeout: 1000 }), 2)
    const raw = rawChildren(2)
    try {
      const rates = await throughputSideBySide(
        { lean: leanRound(lean.call), rawBatched: rawRound(raw.call) },
        { ops: OPS / 2, rounds: ROUNDS, warmup: 2 }
      )
      figure("transport.process.lean.opsPerSec", rates["lean"]!, "ops/s")
      figure("transport.process.rawBatched.opsPerSec", rates["rawBatched"]!, "ops/s")
      ratio("transport.process.lean.vsRawBatched", rates["lean"]!, rates["rawBatched"]!)
    } finally {
      await Promise.all([lean.close(), raw.close()])
    }
  }
}

if (import.meta.main && role === undefined) {
  await runTransport()
  printJson()
  // Node 24 sometimes hangs in process.exit: never let a finished benchmark linger.
  setTimeout(() => process.kill(process.pid, "SIGKILL"), 5000).unref()
}

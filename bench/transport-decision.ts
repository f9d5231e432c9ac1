/**
 * The measurement behind docs/transport.md: can Effect's RPC client reach
 * the thread-transport target through its `RpcClient.Protocol` interface, or
 * does effect-corps need its own lean protocol?
 *
 * An RpcGroup with one rpc `Inc { payload: { n: Number }, success: Number }`
 * is served by 2 worker threads and called with 64 calls in flight through
 * `RpcClient.make(group)`, over
 *   (a) the stock worker protocol (`layerProtocolWorker`, concurrency 64 per worker);
 *   (b) a batching `RpcClient.Protocol` written here, paired with a batching
 *       `RpcServer.Protocol`: every message of a microtask flush goes out as
 *       ONE `postMessage`, calls go to the least-loaded worker;
 *   (c) an `RpcClient.Protocol` that answers every request itself, in this
 *       thread, batched per microtask: no server, no thread hop. It bounds
 *       from above what ANY `RpcClient.Protocol` can give, as it leaves only
 *       the cost of `RpcClient.make` on the calling thread;
 * and compared with
 *   (d) the lean transport (src/node/transport), same Schema work;
 *   (e) raw batched `postMessage` (the ceiling).
 * Rounds are interleaved so machine noise hits each alike.
 *
 * Run with `npx node bench/transport-decision.ts`. This file is also the
 * entry of the RPC worker threads (`workerData.role`).
 */
import { parentPort, Worker, workerData } from "node:worker_threads"
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import * as NodeWorkerRunner from "@effect/platform-node/NodeWorkerRunner"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import { Rpc, RpcClient, RpcGroup, RpcServer } from "effect/rpc"
import type { FromClientEncoded, FromServerEncoded } from "effect/rpc/RpcMessage"
import type * as RpcSerialization from "effect/rpc/RpcSerialization"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Link from "../src/node/transport/Link.ts"
import { throughputSideBySide } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"
import { leanPool, leanRound, rawRound, rawThreads, spawnThread } from "./transport.bench.ts"

const IN_FLIGHT = 64
// Rounds of 100k calls: with 30k the lean rounds were short enough for a GC of the RPC rounds' garbage
// to land in them, and its ratio read ~0.15 lower.
const OPS = Number(process.env["DECISION_OPS"] ?? 100_000)
const ROUNDS = 5

class Inc extends Rpc.make("Inc", { payload: { n: Schema.Number }, success: Schema.Number }) {}
const Group = RpcGroup.make(Inc)
const Handlers = Group.toLayer({ Inc: ({ n }) => Effect.succeed(n + 1) })

type Role = "rpc-stock" | "rpc-batched"
const role = (workerData as { role?: string } | null)?.role as Role | undefined

// --- batching protocols -----------------------------------------------------------------------

/** Queues messages and posts all of a microtask turn as one array. */
const batcher = <A>(post: (batch: Array<A>) => void) => {
  let out: Array<A> = []
  let scheduled = false
  const flush = () => {
    scheduled = false
    const batch = out
    out = []
    post(batch)
  }
  return (message: A) => {
    out.push(message)
    if (!scheduled) {
      scheduled = true
      queueMicrotask(flush)
    }
  }
}

/** Server side, in the worker: requests arrive in arrays, replies leave in arrays. */
const BatchedServerProtocol = Layer.effect(RpcServer.Protocol)(
  RpcServer.Protocol.make((writeRequest) =>
    Effect.gen(function* () {
      const port = parentPort!
      const runFork = Effect.runForkWith(yield* Effect.context<never>())
      port.on("message", (batch: Array<FromClientEncoded>) => {
        runFork(Effect.forEach(batch, (message) => writeRequest(0, message), { discard: true }))
      })
      const post = batcher<FromServerEncoded>((batch) => port.postMessage(batch))
      return {
        disconnects: yield* Queue.make<number>(),
        send: (_clientId: number, response: FromServerEncoded) => Effect.sync(() => post(response)),
        end: () => Effect.void,
        clientIds: Effect.succeed(new Set([0])),
        initialMessage: Effect.succeedNone,
        supportsAck: false,
        supportsTransferables: false,
        supportsSpanPropagation: false,
        supportsNotifications: false,
        codecFor: Schema.toCodecJson as RpcSerialization.CodecFor
      }
    })
  )
)

/** Client side: least-loaded dispatch over the workers, one `postMessage` per worker per flush. */
const batchedClientProtocol = (workers: ReadonlyArray<Worker>) =>
  Layer.effect(RpcClient.Protocol)(
    RpcClient.Protocol.make((writeResponse) =>
      Effect.gen(function* () {
        const runFork = Effect.runForkWith(yield* Effect.context<never>())
        const slots = workers.map((worker) => ({
          inFlight: 0,
          post: batcher<FromClientEncoded>((batch) => worker.postMessage(batch))
        }))
        const owners = new Map<string | number, { readonly slot: (typeof slots)[number]; readonly clientId: number }>()
        slots.forEach((_, i) => {
          workers[i]!.on("message", (batch: Array<FromServerEncoded>) => {
            runFork(
              Effect.forEach(
                batch,
                (response) => {
                  if (response._tag !== "Exit") return Effect.void
                  const owner = owners.get(response.requestId)
                  if (owner === undefined) return Effect.void
                  owners.delete(response.requestId)
                  owner.slot.inFlight--
                  return writeResponse(owner.clientId, response)
                },
                { discard: true }
              )
            )
          })
        })
        return {
          send: (clientId: number, request: FromClientEncoded) =>
            Effect.sync(() => {
              if (request._tag === "Request") {
                let slot = slots[0]!
                for (const s of slots) if (s.inFlight < slot.inFlight) slot = s
                slot.inFlight++
                owners.set(request.id, { slot, clientId })
                slot.post(request)
              } else if (request._tag === "Interrupt") {
                owners.get(request.requestId)?.slot.post(request)
              }
            }),
          supportsAck: false,
          supportsTransferables: false,
          codecFor: Schema.toCodecJson as RpcSerialization.CodecFor
        }
      })
    )
  )

/** No server at all: each request is answered in this thread, in one batch per microtask. */
const echoClientProtocol = Layer.effect(RpcClient.Protocol)(
  RpcClient.Protocol.make((writeResponse) =>
    Effect.gen(function* () {
      const runFork = Effect.runForkWith(yield* Effect.context<never>())
      const reply = batcher<readonly [number, FromServerEncoded]>((batch) => {
        runFork(Effect.forEach(batch, ([clientId, response]) => writeResponse(clientId, response), { discard: true }))
      })
      return {
        send: (clientId: number, request: FromClientEncoded) =>
          Effect.sync(() => {
            if (request._tag !== "Request") return
            const n = (request.payload as { n: number }).n
            reply([clientId, { _tag: "Exit", requestId: request.id, exit: { _tag: "Success", value: n + 1 } }])
          }),
        supportsAck: false,
        supportsTransferables: false,
        codecFor: Schema.toCodecJson as RpcSerialization.CodecFor
      }
    })
  )
)

// --- worker entry -----------------------------------------------------------------------------

if (role !== undefined) {
  const protocol =
    role === "rpc-stock"
      ? RpcServer.layerProtocolWorkerRunner.pipe(Layer.provide(NodeWorkerRunner.layer))
      : BatchedServerProtocol
  const server = RpcServer.layer(Group, { disableTracing: true }).pipe(Layer.provide([Handlers, protocol]))
  Effect.runFork(Layer.launch(server))
}

// --- caller side ------------------------------------------------------------------------------

const self = new URL(import.meta.url)

/** Builds an RPC client over `layer` that lives until `close`. */
const rpcClient = async (layer: Layer.Layer<RpcClient.Protocol>) => {
  const scope = Scope.makeUnsafe()
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const client = await Effect.runPromise(
    RpcClient.make(Group, { disableTracing: true }).pipe(
      Effect.provideContext(Context.add(context, Scope.Scope, scope))
    )
  )
  const call = (n: number) => client.Inc({ n }) as Effect.Effect<number, unknown>
  await Effect.runPromise(Effect.all([call(0), call(0)], { concurrency: 2 }))
  return { call, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const run = async (): Promise<void> => {
  section(`Inc through 2 worker threads, ${IN_FLIGHT} in flight (ops/s, median of ${ROUNDS} interleaved rounds)`)
  const stock = await rpcClient(
    RpcClient.layerProtocolWorker({ size: 2, concurrency: IN_FLIGHT }).pipe(
      Layer.provide(NodeWorker.layer(() => new Worker(self, { workerData: { role: "rpc-stock" } }))),
      Layer.orDie
    )
  )
  const batchedWorkers = [0, 1].map(() => new Worker(self, { workerData: { role: "rpc-batched" } }))
  const batched = await rpcClient(batchedClientProtocol(batchedWorkers))
  const clientOnly = await rpcClient(echoClientProtocol)
  const lean = await leanPool(() => Link.fromWorker(spawnThread("lean")), 2)
  const raw = rawThreads(2)
  try {
    const rates = await throughputSideBySide(
      {
        rpcStock: leanRound(stock.call),
        rpcBatched: leanRound(batched.call),
        rpcClientOnly: leanRound(clientOnly.call),
        lean: leanRound(lean.call),
        rawBatched: rawRound(raw.call)
      },
      { ops: OPS, rounds: ROUNDS, warmup: 2 }
    )
    for (const [name, rate] of Object.entries(rates)) figure(`decision.${name}.opsPerSec`, rate, "ops/s")
    for (const name of ["rpcStock", "rpcBatched", "rpcClientOnly", "lean"]) {
      ratio(`decision.${name}.vsRawBatched`, rates[name]!, rates["rawBatched"]!, "≥ 0.6")
    }
  } finally {
    await Promise.all([
      stock.close(),
      batched.close(),
      clientOnly.close(),
      ...batchedWorkers.map((w) => w.terminate()),
      lean.close(),
      raw.close()
    ])
  }
}

if (import.meta.main && role === undefined) {
  await run()
  printJson()
  // Node 24 sometimes hangs in process.exit: never let a finished benchmark linger.
  setTimeout(() => process.kill(process.pid, "SIGKILL"), 5000).unref()
}

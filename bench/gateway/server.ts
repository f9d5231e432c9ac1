/**
 * The server side of bench/gateway.bench.ts, in its own process (so the load
 * generator and the server do not share a thread): an Adder Func served by
 * `Gateway.layer` (`gateway`, `gateway-auth`) or by the same handler written
 * directly with effect/http (`direct`: one route that reads the JSON body,
 * decodes it with the payload Schema, calls the Worker through its handle and
 * answers its JSON). Prints `PORT <n>` when it listens, then serves until
 * killed.
 *
 * Run: node bench/gateway/server.ts gateway|gateway-auth|direct
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Redacted, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Corps, Gateway, Worker } from "../../src/index.ts"

/** The benchmarked Worker. */
export class Adder extends Worker.Service<Adder>()("Adder", {
  add: { payload: { a: Schema.Number, b: Schema.Number }, success: Schema.Number }
}) {}

const AdderLive = Adder.func({ add: ({ a, b }) => a + b })

/** The token of the `gateway-auth` mode. */
export const TOKEN = "bench-token"

const Payload = Schema.toCodecJson(Schema.Struct({ a: Schema.Number, b: Schema.Number }))
const decodePayload = Schema.decodeUnknownEffect(Payload)

/** The same call written directly on effect/http: no http-api, no OpenAPI, no middleware. */
const direct = HttpRouter.use((router) =>
  Effect.gen(function* () {
    const adder = yield* Adder
    yield* router.add(
      "POST",
      "/Adder/add",
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const body = yield* Effect.orDie(request.json)
        const payload = yield* decodePayload(body)
        return HttpServerResponse.jsonUnsafe(yield* adder.add(payload))
      }).pipe(Effect.catch(() => Effect.succeed(HttpServerResponse.empty({ status: 400 }))))
    )
  })
)

const mode = process.argv[2] ?? "gateway"

const directServer = Layer.effectDiscard(
  Effect.map(HttpServer.HttpServer, (server) => console.log(`PORT ${(server.address as { port: number }).port}`))
).pipe(
  Layer.provideMerge(HttpRouter.serve(direct, { disableLogger: true, disableListenLog: true })),
  Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
)

const gatewayServer = Layer.effectDiscard(
  Effect.map(Gateway.Gateway, (gateway) => console.log(`PORT ${gateway.port}`))
).pipe(
  Layer.provide(
    Gateway.layer([Adder], { port: 0, ...(mode === "gateway-auth" ? { auth: { bearer: Redacted.make(TOKEN) } } : {}) })
  )
)

const server: Layer.Layer<never, unknown, Adder> = mode === "direct" ? directServer : gatewayServer
Effect.runFork(Layer.launch(server.pipe(Layer.provide(Corps.layer([AdderLive])))))

// Exit (and so write a --cpu-prof profile, when asked for one) on SIGTERM.
process.once("SIGTERM", () => process.exit(0))

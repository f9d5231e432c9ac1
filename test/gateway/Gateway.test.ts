/**
 * The HTTP gateway, through real HTTP requests (fetch) on a random port:
 * calls, keyed instances, refusals (400, 401, 404, 413), typed errors as
 * statuses with decodable bodies, NDJSON streams, the OpenAPI document and
 * the docs page — with the Workers in the caller's runtime and in a thread.
 */
import { createServer } from "node:net"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Redacted, Schema } from "effect"
import { Corps, CorpsError, Gateway, type Placement } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { Counter, CounterLive, OutOfStock, Shop, ShopClosed, ShopLive } from "../fixtures/gateway.ts"

const TOKEN = "test-token"
const LIMIT = 1024

interface Reply {
  readonly status: number
  readonly type: string | null
  readonly text: string
  readonly json: () => unknown
}

/** One request; `token: null` sends no Authorization header. */
const request = (
  path: string,
  options: { readonly body?: string; readonly token?: string | null; readonly method?: string } = {}
) =>
  Effect.flatMap(Gateway.Gateway, ({ url }) =>
    Effect.promise(async (): Promise<Reply> => {
      const token = options.token === undefined ? TOKEN : options.token
      const response = await fetch(url + path, {
        method: options.method ?? "POST",
        headers: {
          "content-type": "application/json",
          ...(token === null ? {} : { authorization: `Bearer ${token}` })
        },
        ...(options.body === undefined ? {} : { body: options.body })
      })
      const text = await response.text()
      return { status: response.status, type: response.headers.get("content-type"), text, json: () => JSON.parse(text) }
    })
  )

const post = (path: string, payload?: unknown, token?: string | null) =>
  request(path, {
    ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
    ...(token === undefined ? {} : { token })
  })

const ndjson = (text: string): Array<unknown> =>
  text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line))

interface Suite {
  readonly effect: (name: string, test: () => Effect.Effect<void, never, Gateway.Gateway>) => void
}

/** The behaviours every placement must show. */
const callSuite = (it: Suite, prefix: string) => {
  it.effect("a valid call answers 200 with the success encoded by its Schema", () =>
    Effect.gen(function* () {
      const first = yield* post(`/Counter/increment?key=${prefix}-valid`, { by: 2 })
      assert.strictEqual(first.status, 200)
      assert.deepStrictEqual(first.json(), 2)
      const order = yield* post("/Shop/order", { item: "tea", quantity: 3 })
      assert.strictEqual(order.status, 200)
      assert.deepStrictEqual(order.json(), { item: "tea", total: 30 })
    })
  )

  it.effect("?key= addresses one instance; without it, the default one", () =>
    Effect.gen(function* () {
      yield* post(`/Counter/increment?key=${prefix}-a`, { by: 5 })
      yield* post(`/Counter/increment?key=${prefix}-a`, { by: 1 })
      yield* post(`/Counter/increment?key=${prefix}-b`, { by: 100 })
      assert.deepStrictEqual((yield* post(`/Counter/get?key=${prefix}-a`)).json(), 6)
      assert.deepStrictEqual((yield* post(`/Counter/get?key=${prefix}-b`)).json(), 100)
      const before = (yield* post("/Counter/get")).json() as number
      yield* post("/Counter/increment", { by: 1 })
      assert.deepStrictEqual((yield* post("/Counter/get")).json(), before + 1)
      assert.deepStrictEqual((yield* post(`/Counter/get?key=${prefix}-a`)).json(), 6)
    })
  )

  it.effect("a contract error answers 422 (or its declared status) with the tagged error as the body", () =>
    Effect.gen(function* () {
      const out = yield* post("/Shop/order", { item: "unicorn", quantity: 1 })
      assert.strictEqual(out.status, 422)
      const error = Schema.decodeUnknownSync(OutOfStock)(out.json())
      assert.instanceOf(error, OutOfStock)
      assert.strictEqual(error.item, "unicorn")
      const closed = yield* post("/Shop/order", { item: "midnight", quantity: 1 })
      assert.strictEqual(closed.status, 409)
      assert.strictEqual(Schema.decodeUnknownSync(ShopClosed)(closed.json()).until, "08:00")
    })
  )

  it.effect("a handler's defect answers 500 with WorkerDefect, without the server's stack", () =>
    Effect.gen(function* () {
      const out = yield* post("/Shop/crash")
      assert.strictEqual(out.status, 500)
      const error = Schema.decodeUnknownSync(CorpsError.CallError)(out.json())
      assert.instanceOf(error, CorpsError.WorkerDefect)
      assert.strictEqual((error as CorpsError.WorkerDefect).defectMessage, "the till broke")
      assert.strictEqual((error as CorpsError.WorkerDefect).defectStack, undefined)
    })
  )

  it.effect("a stream method answers NDJSON, read to its end", () =>
    Effect.gen(function* () {
      const out = yield* post("/Shop/receipts", { count: 4 })
      assert.strictEqual(out.status, 200)
      assert.strictEqual(out.type, "application/x-ndjson")
      assert.deepStrictEqual(ndjson(out.text), [{ line: 1 }, { line: 2 }, { line: 3 }, { line: 4 }])
      const empty = yield* post("/Shop/receipts", { count: 0 })
      assert.strictEqual(empty.status, 200)
      assert.deepStrictEqual(ndjson(empty.text), [])
    })
  )

  it.effect("a stream failing before its first element answers with the error's status and body", () =>
    Effect.gen(function* () {
      const out = yield* post("/Shop/receipts", { count: 3, failAfter: 0 })
      assert.strictEqual(out.status, 422)
      assert.deepStrictEqual(out.json(), { _tag: "OutOfStock", item: "line 1" })
    })
  )

  it.effect("with Accept: text/event-stream, a stream is Server-Sent Events, a late failure its last event", () =>
    Effect.gen(function* () {
      const events = (text: string) =>
        text
          .split("\n\n")
          .filter((block) => block !== "")
          .map((block) => {
            const lines = block.split("\n")
            const name = lines.find((line) => line.startsWith("event: "))?.slice(7) ?? "message"
            const data = lines.find((line) => line.startsWith("data: "))?.slice(6) ?? ""
            return { name, data: JSON.parse(data) }
          })
      const sse = (payload: unknown) =>
        Effect.flatMap(Gateway.Gateway, ({ url }) =>
          Effect.promise(async () => {
            const response = await fetch(`${url}/Shop/receipts`, {
              method: "POST",
              headers: { authorization: `Bearer ${TOKEN}`, accept: "text/event-stream" },
              body: JSON.stringify(payload)
            })
            return { status: response.status, type: response.headers.get("content-type"), text: await response.text() }
          })
        )
      const whole = yield* sse({ count: 2 })
      assert.strictEqual(whole.status, 200)
      assert.include(whole.type ?? "", "text/event-stream")
      assert.deepStrictEqual(events(whole.text), [
        { name: "message", data: { line: 1 } },
        { name: "message", data: { line: 2 } }
      ])
      const failing = yield* sse({ count: 5, failAfter: 2 })
      assert.strictEqual(failing.status, 200)
      const received = events(failing.text)
      assert.deepStrictEqual(received, [
        { name: "message", data: { line: 1 } },
        { name: "message", data: { line: 2 } },
        { name: "error", data: { _tag: "OutOfStock", item: "line 3" } }
      ])
      assert.instanceOf(Schema.decodeUnknownSync(OutOfStock)(received[2]!.data), OutOfStock)
    })
  )

  it.effect("a void method answers 204", () =>
    Effect.gen(function* () {
      const out = yield* post("/Shop/note", { text: "hello" })
      assert.strictEqual(out.status, 204)
      assert.strictEqual(out.text, "")
    })
  )
}

const serve = (
  corps: Layer.Layer<Counter | Shop, unknown>,
  auth: Gateway.Auth
): Layer.Layer<Gateway.Gateway, unknown> =>
  Gateway.layer([Counter, Shop], { port: 0, auth, maxBodyBytes: LIMIT }).pipe(Layer.provide(corps))

describe("Gateway", () => {
  layer(serve(Corps.layer([CounterLive, ShopLive]), { bearer: Redacted.make(TOKEN) }), { excludeTestServices: true })(
    "Workers in the caller's runtime",
    (it) => {
      callSuite(it, "local")

      it.effect("a body the payload Schema refuses answers 400 with the Schema's issue; nothing is called", () =>
        Effect.gen(function* () {
          const wrong = yield* post("/Counter/increment?key=invalid", { by: "two" })
          assert.strictEqual(wrong.status, 400)
          const error = Schema.decodeUnknownSync(CorpsError.InvalidPayload)(wrong.json())
          assert.strictEqual(error.worker, "Counter")
          assert.strictEqual(error.method, "increment")
          assert.include(error.issue, "Expected number")
          assert.include(error.issue, '["by"]')
          const refinement = yield* post("/Shop/order", { item: "tea", quantity: 0 })
          assert.strictEqual(refinement.status, 400)
          assert.include(Schema.decodeUnknownSync(CorpsError.InvalidPayload)(refinement.json()).issue, "quantity")
          const notJson = yield* request("/Counter/increment?key=invalid", { body: "{by: 1" })
          assert.strictEqual(notJson.status, 400)
          assert.include(Schema.decodeUnknownSync(CorpsError.InvalidPayload)(notJson.json()).issue, "not JSON")
          const missing = yield* request("/Counter/increment?key=invalid")
          assert.strictEqual(missing.status, 400)
          assert.deepStrictEqual((yield* post("/Counter/get?key=invalid")).json(), 0)
        })
      )

      it.effect("an unknown Worker or method answers 404 with UnknownWorker or UnknownMethod", () =>
        Effect.gen(function* () {
          const worker = yield* post("/Nobody/increment", {})
          assert.strictEqual(worker.status, 404)
          const unknownWorker = Schema.decodeUnknownSync(CorpsError.UnknownWorker)(worker.json())
          assert.strictEqual(unknownWorker.worker, "Nobody")
          const method = yield* post("/Counter/decrement", {})
          assert.strictEqual(method.status, 404)
          const unknownMethod = Schema.decodeUnknownSync(CorpsError.UnknownMethod)(method.json())
          assert.deepStrictEqual([unknownMethod.worker, unknownMethod.method], ["Counter", "decrement"])
          const get = yield* request("/Counter/get", { method: "GET" })
          assert.strictEqual(get.status, 405)
        })
      )

      it.effect("a body over maxBodyBytes answers 413; nothing is called", () =>
        Effect.gen(function* () {
          const big = yield* post("/Shop/order", { item: "x".repeat(LIMIT), quantity: 1 })
          assert.strictEqual(big.status, 413)
          assert.strictEqual(Schema.decodeUnknownSync(CorpsError.PayloadTooLarge)(big.json()).limit, LIMIT)
          // A body without a Content-Length is counted as it is read.
          const chunked = yield* Effect.flatMap(Gateway.Gateway, ({ url }) =>
            Effect.promise(async () => {
              const body = new ReadableStream({
                start(controller) {
                  controller.enqueue(new TextEncoder().encode(`{"by":1,"pad":"${"y".repeat(2 * LIMIT)}"}`))
                  controller.close()
                }
              })
              const response = await fetch(`${url}/Counter/increment?key=big`, {
                method: "POST",
                headers: { authorization: `Bearer ${TOKEN}` },
                body,
                duplex: "half"
              } as RequestInit)
              return response.status
            })
          )
          assert.strictEqual(chunked, 413)
          assert.deepStrictEqual((yield* post("/Counter/get?key=big")).json(), 0)
        })
      )

      it.effect("a missing or wrong bearer token answers 401; nothing is called", () =>
        Effect.gen(function* () {
          const missing = yield* post("/Counter/increment?key=guarded", { by: 1 }, null)
          assert.strictEqual(missing.status, 401)
          assert.deepStrictEqual(missing.json(), { _tag: "GatewayUnauthorized", reason: "missing" })
          const wrong = yield* post("/Counter/increment?key=guarded", { by: 1 }, "not-the-token")
          assert.strictEqual(wrong.status, 401)
          assert.strictEqual(Schema.decodeUnknownSync(CorpsError.GatewayUnauthorized)(wrong.json()).reason, "refused")
          // Unknown paths are refused too: without the token, Worker names do not leak.
          assert.strictEqual((yield* post("/Nobody/x", {}, null)).status, 401)
          assert.deepStrictEqual((yield* post("/Counter/get?key=guarded")).json(), 0)
        })
      )

      it.effect("NDJSON: a stream failing after elements does not end cleanly", () =>
        Effect.gen(function* () {
          const result = yield* Effect.flatMap(Gateway.Gateway, ({ url }) =>
            Effect.promise(async () => {
              try {
                const response = await fetch(`${url}/Shop/receipts`, {
                  method: "POST",
                  headers: { authorization: `Bearer ${TOKEN}` },
                  body: JSON.stringify({ count: 5, failAfter: 2 })
                })
                return `ended cleanly: ${response.status} ${await response.text()}`
              } catch (error) {
                return `broken: ${String(error)}`
              }
            })
          )
          assert.match(result, /^broken: /)
        })
      )

      it.effect("the OpenAPI document lists every method with its schemas and statuses", () =>
        Effect.gen(function* () {
          const out = yield* request("/openapi.json", { method: "GET", token: null })
          assert.strictEqual(out.status, 200)
          const doc = out.json() as any
          assert.strictEqual(doc.openapi.slice(0, 2), "3.")
          for (const worker of [Counter, Shop]) {
            for (const method of Object.keys(worker.methods)) {
              const operation = doc.paths[`/${worker.key}/${method}`]?.post
              assert.isDefined(operation, `${worker.key}.${method} is documented`)
              assert.deepStrictEqual(operation.security, [{ bearer: [] }])
              const statuses = Object.keys(operation.responses)
              for (const status of ["400", "401", "404", "413", "429", "500", "503"]) assert.include(statuses, status)
              const spec = (worker.methods as Record<string, { payload?: unknown }>)[method]!
              assert.strictEqual(operation.requestBody !== undefined, spec.payload !== undefined, `${method} body`)
            }
          }
          const order = doc.paths["/Shop/order"].post
          const body = order.requestBody.content["application/json"].schema
          assert.deepStrictEqual(body.required, ["item", "quantity"])
          assert.strictEqual(body.properties.quantity.type, "integer")
          const success = order.responses["200"].content["application/json"].schema
          assert.deepStrictEqual(Object.keys(success.properties), ["item", "total"])
          assert.include(JSON.stringify(order.responses["422"]), "OutOfStock")
          assert.include(JSON.stringify(order.responses["409"]), "ShopClosed")
          assert.include(JSON.stringify(order.responses["503"]), "CallLost")
          const receipts = doc.paths["/Shop/receipts"].post.responses["200"].content
          assert.property(receipts, "application/x-ndjson")
          assert.deepStrictEqual(doc.components.securitySchemes.bearer, { type: "http", scheme: "Bearer" })
          assert.deepStrictEqual(doc.paths["/Counter/get"].post.parameters[0].name, "key")
        })
      )

      it.effect("the docs page answers with the API reference", () =>
        Effect.gen(function* () {
          const out = yield* request("/docs", { method: "GET", token: null })
          assert.strictEqual(out.status, 200)
          assert.include(out.type ?? "", "text/html")
          assert.include(out.text, "api-reference")
          assert.include(out.text, "/Shop/order")
        })
      )

      it.effect("handlers run in the caller's runtime here (the main thread)", () =>
        Effect.gen(function* () {
          assert.deepStrictEqual((yield* post("/Shop/where")).json(), 0)
        })
      )
    }
  )

  const threads: Placement.Placement = { envs: { pool: { kind: "thread", count: 1 } }, default: "pool" }
  const fixtures = new URL("../fixtures/gateway.ts", import.meta.url).href
  // The token is checked by a function here: the other form of `auth`.
  const byFunction: Gateway.Auth = { bearer: (token) => Effect.succeed(Redacted.value(token) === TOKEN) }
  layer(
    serve(
      Corps.layer([CounterLive, ShopLive], { placement: threads, module: fixtures }).pipe(Layer.provide(NodeEnv.layer)),
      byFunction
    ),
    { excludeTestServices: true, timeout: 60_000 }
  )("Workers in a thread Env", (it) => {
    callSuite(it, "thread")

    it.effect("handlers run in a worker thread, not the gateway's", () =>
      Effect.gen(function* () {
        const where = (yield* post("/Shop/where")).json() as number
        assert.notStrictEqual(where, 0)
        assert.strictEqual((yield* post("/Shop/where", undefined, "wrong")).status, 401)
      })
    )

    // Last in this suite: it takes the thread down (its supervisor starts another).
    it.effect("a call lost with its Env answers 503 with CallLost", () =>
      Effect.gen(function* () {
        const out = yield* post("/Shop/exit")
        assert.strictEqual(out.status, 503)
        const error = Schema.decodeUnknownSync(CorpsError.CallError)(out.json())
        assert.instanceOf(error, CorpsError.CallLost)
        assert.deepStrictEqual(
          [(error as CorpsError.CallLost).worker, (error as CorpsError.CallLost).method],
          ["Shop", "exit"]
        )
      })
    )
  })

  it.effect("invalid options fail with GatewayError options", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Layer.build(Gateway.layer([Counter], { port: 70000 }).pipe(Layer.provide(Corps.layer([CounterLive]))))
      )
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.findErrorOption(exit as Exit.Exit<unknown, CorpsError.GatewayError>)
      assert.strictEqual(error._tag === "Some" ? error.value.reason : undefined, "options")
      const twice = yield* Effect.exit(
        Layer.build(Gateway.layer([Counter, Counter], { port: 0 }).pipe(Layer.provide(Corps.layer([CounterLive]))))
      )
      const second = Exit.findErrorOption(twice as Exit.Exit<unknown, CorpsError.GatewayError>)
      assert.include(second._tag === "Some" ? second.value.detail : "", "twice")
    }).pipe(Effect.scoped)
  )

  it.live("a port in use fails with GatewayError listen", () =>
    Effect.gen(function* () {
      const busy = createServer()
      const port = yield* Effect.promise(
        () =>
          new Promise<number>((resolve) =>
            busy.listen(0, "127.0.0.1", () => resolve((busy.address() as { port: number }).port))
          )
      )
      yield* Effect.addFinalizer(() =>
        Effect.promise(() => new Promise<void>((resolve) => busy.close(() => resolve())))
      )
      const exit = yield* Effect.exit(
        Layer.build(Gateway.layer([Counter], { port }).pipe(Layer.provide(Corps.layer([CounterLive]))))
      )
      const error = Exit.findErrorOption(exit as Exit.Exit<unknown, CorpsError.GatewayError>)
      assert.strictEqual(error._tag === "Some" ? error.value.reason : undefined, "listen")
    }).pipe(Effect.scoped)
  )
})

/**
 * The dashboard's HTTP server with real requests, for a running Corps with a
 * thread Env: the snapshot decodes with its Schema and shows the Workers, the
 * stream delivers snapshots and events, /metrics is Prometheus text, and bad
 * requests get 404 / 405.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Metric, Schedule, Schema } from "effect"
import { fetchSnapshot } from "../../src/cli/snapshots.ts"
import { Corps, Dashboard, Monitoring } from "../../src/index.ts"
import { Snapshot } from "../../src/monitoring/Snapshot.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { CartLive, Shop, ShopLive } from "../fixtures/dashboard.ts"

const fixtures = new URL("../fixtures/dashboard.ts", import.meta.url).href

const corps = Corps.layer([ShopLive, CartLive], {
  name: "shop",
  module: fixtures,
  placement: { envs: { pool: { kind: "thread", count: 2 } }, workers: { Shop: { env: "pool" } } }
}).pipe(Layer.provideMerge(Dashboard.layer({ port: 0, intervalMillis: 200 })), Layer.provide(NodeEnv.layer))

/** With metrics: the Envs' figures are collected every 100 ms. */
const live = corps.pipe(Layer.provideMerge(Monitoring.layer({ intervalMillis: 100 })))

const get = (path: string, init?: RequestInit) =>
  Effect.flatMap(Effect.service(Dashboard.Dashboard), (dashboard) =>
    Effect.promise(() => fetch(new URL(path, dashboard.url), init))
  )

const snapshot = Effect.flatMap(get("/api/snapshot"), (response) =>
  Effect.flatMap(
    Effect.promise(() => response.json()),
    Schema.decodeUnknownEffect(Snapshot)
  )
).pipe(Effect.orDie)

/** Reads Server-Sent Events from `/api/stream` until `until` accepts one; returns the events read. */
const readStream = (until: (event: string, data: any) => boolean, connected?: Deferred.Deferred<void>) =>
  Effect.gen(function* () {
    const dashboard = yield* Effect.service(Dashboard.Dashboard)
    const controller = new AbortController()
    return yield* Effect.promise(async () => {
      const response = await fetch(new URL("/api/stream", dashboard.url), { signal: controller.signal })
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      const seen: Array<{ event: string; data: any }> = []
      let buffer = ""
      try {
        for (;;) {
          const { value, done } = await reader.read()
          if (done) return { seen, contentType: response.headers.get("content-type") }
          buffer += decoder.decode(value, { stream: true })
          let end = buffer.indexOf("\n\n")
          while (end !== -1) {
            const frame = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const event = /^event: (.*)$/m.exec(frame)?.[1] ?? "message"
            const data = JSON.parse(/^data: (.*)$/m.exec(frame)?.[1] ?? "null")
            seen.push({ event, data })
            if (connected !== undefined) Deferred.doneUnsafe(connected, Exit.void)
            if (until(event, data)) return { seen, contentType: response.headers.get("content-type") }
            end = buffer.indexOf("\n\n")
          }
        }
      } finally {
        controller.abort()
      }
    })
  })

describe("Dashboard", () => {
  it.live("GET /api/snapshot: the Snapshot, decoded by its Schema, shows the Corps, its Workers and Envs", () =>
    Effect.gen(function* () {
      const shop = yield* Shop
      for (const item of ["apple", "pear", "fig"]) yield* shop.price({ item })
      yield* Effect.exit(shop.order({ item: "unicorn" }))
      const snap = yield* snapshot
      assert.strictEqual(snap.corps.name, "shop")
      const workers = Object.fromEntries(snap.corps.workers.map((w) => [w.name, w]))
      assert.deepStrictEqual(Object.keys(workers).sort(), ["Cart", "Shop"])
      assert.deepStrictEqual([workers.Shop!.kind, workers.Shop!.env], ["func", "pool"])
      assert.deepStrictEqual([workers.Cart!.kind, workers.Cart!.env], ["conc", "local"])
      const methods = Object.fromEntries(workers.Shop!.methods.map((m) => [m.method, m]))
      assert.deepStrictEqual(Object.keys(methods).sort(), ["exit", "order", "price"])
      // Counted by the caller as the calls end: exact at once.
      assert.strictEqual(methods.price!.calls, 3)
      assert.strictEqual(methods.order!.calls, 1)
      assert.deepStrictEqual(methods.order!.failures, { OutOfStock: 1 })
      assert.isTrue(
        methods.price!.latencyMillis.p50 > 0 && methods.price!.latencyMillis.p99 >= methods.price!.latencyMillis.p50
      )
      const pool = snap.corps.envs.find((e) => e.name === "pool")!
      assert.deepStrictEqual([pool.kind, pool.size], ["thread", 2])
      assert.deepStrictEqual(
        pool.slots.map((s) => [s.index, s.state, s.restarts]),
        [
          [0, "serving", 0],
          [1, "serving", 0]
        ]
      )
      // The Envs' start is on the timeline.
      assert.deepStrictEqual(snap.events.flatMap((e) => (e._tag === "EnvStarted" ? [e.index] : [])).sort(), [0, 1])
      // Where each slot runs comes with the Envs' first collection.
      const sampled = yield* snapshot.pipe(
        Effect.repeat({
          schedule: Schedule.spaced("50 millis"),
          until: (s) => s.corps.envs.find((e) => e.name === "pool")!.slots.every((slot) => slot.pid !== undefined)
        })
      )
      for (const slot of sampled.corps.envs.find((e) => e.name === "pool")!.slots) {
        assert.strictEqual(slot.pid, process.pid)
        assert.isTrue(slot.threadId! > 0 && slot.heapUsed! > 0)
      }
    }).pipe(Effect.provide(live), Effect.scoped)
  )

  it.live("without Monitoring.layer: the tree, Envs and events, with no per-method figures", () =>
    Effect.gen(function* () {
      const shop = yield* Shop
      yield* shop.price({ item: "apple" })
      const snap = yield* snapshot
      const methods = snap.corps.workers.find((w) => w.name === "Shop")!.methods
      assert.deepStrictEqual(
        methods.map((m) => [m.method, m.calls]),
        [
          ["price", 0],
          ["order", 0],
          ["exit", 0]
        ]
      )
      assert.strictEqual(snap.corps.envs.find((e) => e.name === "pool")!.slots.length, 2)
    }).pipe(Effect.provide(corps), Effect.scoped)
  )

  it.live("GET /api/stream: a snapshot at once, then snapshots and each event as it happens", () =>
    Effect.gen(function* () {
      const shop = yield* Shop
      const first = yield* readStream((event) => event === "snapshot")
      assert.strictEqual(first.contentType, "text/event-stream")
      assert.strictEqual(first.seen[0]!.event, "snapshot")
      Schema.decodeUnknownSync(Snapshot)(first.seen[0]!.data)
      // A thread Env dies: its crash and its restart arrive as events on the stream.
      const connected = yield* Deferred.make<void>()
      const reading = yield* Effect.forkChild(
        readStream((event, data) => event === "event" && data._tag === "EnvStarted" && data.attempt > 0, connected)
      )
      // The stream is open (its first frame arrived) before the crash.
      yield* Deferred.await(connected)
      yield* Effect.exit(shop.exit())
      const { seen } = yield* Fiber.join(reading)
      const tags = seen.filter((e) => e.event === "event").map((e) => e.data._tag)
      assert.includeMembers(tags, ["EnvCrashed", "EnvRestarting", "EnvStarted"])
      assert.isTrue(seen.filter((e) => e.event === "snapshot").length >= 1)
      const after = yield* snapshot
      const restarts = after.corps.envs.find((e) => e.name === "pool")!.slots.reduce((n, s) => n + s.restarts, 0)
      assert.strictEqual(restarts, 1)
    }).pipe(Effect.provide(live), Effect.scoped)
  )

  it.live("GET /metrics: Prometheus text of the caller's metric registry", () =>
    Effect.gen(function* () {
      const shop = yield* Shop
      yield* shop.price({ item: "kiwi" })
      yield* Metric.update(Metric.counter("dashboard_test_hits", { description: "a test counter" }), 7)
      const response = yield* get("/metrics")
      assert.strictEqual(response.status, 200)
      assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/)
      const text = yield* Effect.promise(() => response.text())
      assert.match(text, /^# TYPE dashboard_test_hits counter$/m)
      assert.match(text, /^dashboard_test_hits 7$/m)
      // effect-corps' own metrics, recorded by Monitoring.layer, in the same registry.
      const price = text
        .split("\n")
        .find((line) => line.startsWith("corps_calls_total{") && line.includes('method="price"'))
      assert.isDefined(price)
      assert.include(price!, 'worker="Shop"')
      assert.match(price!, / 1$/)
    }).pipe(Effect.provide(live), Effect.scoped)
  )

  it.live("GET / serves the page; an unknown path is 404, another method 405", () =>
    Effect.gen(function* () {
      const page = yield* get("/")
      assert.strictEqual(page.status, 200)
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
      assert.include(yield* Effect.promise(() => page.text()), "api/stream")
      const missing = yield* get("/nope")
      assert.strictEqual(missing.status, 404)
      const post = yield* get("/api/snapshot", { method: "POST", body: "{}" })
      assert.strictEqual(post.status, 405)
      assert.strictEqual(post.headers.get("allow"), "GET, HEAD")
    }).pipe(Effect.provide(live), Effect.scoped)
  )

  it.live("fetchSnapshot (corps status / top): a snapshot, or DashboardError response for what is not one", () =>
    Effect.gen(function* () {
      const { url } = yield* Dashboard.Dashboard
      const read = yield* fetchSnapshot(url)
      assert.strictEqual(read.corps.name, "shop")
      // A server answers, but not with a snapshot: the page's path, then a 404.
      const notJson = yield* Effect.flip(fetchSnapshot(new URL("api/snapshot/", url).href))
      assert.deepStrictEqual([notJson._tag, notJson.reason], ["DashboardError", "response"])
      assert.include(notJson.detail, "HTTP 404")
    }).pipe(Effect.provide(corps), Effect.scoped)
  )

  it.live("DashboardError: invalid options, and a port already taken", () =>
    Effect.gen(function* () {
      const invalid = yield* Effect.exit(Layer.build(Dashboard.layer({ port: 70000 })).pipe(Effect.scoped))
      assert.isTrue(Exit.isFailure(invalid))
      const error = yield* Effect.flip(Layer.build(Dashboard.layer({ port: -1 })).pipe(Effect.scoped))
      assert.strictEqual(error._tag, "DashboardError")
      assert.strictEqual(error.reason, "options")
      const taken = yield* Dashboard.Dashboard
      const busy = yield* Effect.flip(Layer.build(Dashboard.layer({ port: taken.port })).pipe(Effect.scoped))
      assert.strictEqual(busy.reason, "listen")
      assert.include(busy.message, `127.0.0.1:${taken.port}`)
    }).pipe(Effect.provide(Dashboard.layer({ port: 0 })), Effect.scoped)
  )
})

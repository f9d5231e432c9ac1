/**
 * A trace from the caller into a cluster runner (a real `corps runner`
 * process exporting to the same OTLP receiver, CORPS_OTLP_URL): the
 * runner's spans for the call descend from the caller's `Worker.method`.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime, Schedule, Scope } from "effect"
import * as Cluster from "../../src/cluster/Cluster.ts"
import * as ClusterEnv from "../../src/cluster/ClusterEnv.ts"
import { makeTargets } from "../../src/cluster/internal/Entities.ts"
import { Corps, Monitoring } from "../../src/index.ts"
import { dropTables, killAll, makeRun, ports, postgres, startRunner } from "../cluster/harness.ts"
import { Hasher, HasherLive } from "../cluster/workers.ts"
import { type ReceivedSpan, receiver } from "./otlp.ts"

const run = makeRun()
const [port] = ports(1) as [number]
let otlp: { readonly url: string; readonly spans: Array<ReceivedSpan> }
let scope: Scope.Closeable

beforeAll(async () => {
  if (!postgres) return
  scope = Scope.makeUnsafe()
  otlp = await Effect.runPromise(Scope.provide(receiver, scope))
  await startRunner(run, port, { env: { CORPS_OTLP_URL: otlp.url, CORPS_OTLP_SERVICE: "runner-test" } })
  // The runner serves once it holds shards: wait until a call reaches it.
  const client = ManagedRuntime.make(Cluster.layerSql({ settings: run.settings }))
  await client.runPromise(
    Effect.gen(function* () {
      const hasher = (yield* makeTargets(Hasher, "func"))("default")
      yield* hasher.call("pid", undefined)
    }).pipe(Effect.retry(Schedule.spaced("200 millis")), Effect.timeout("30 seconds"))
  )
  await client.dispose()
}, 60_000)

afterAll(async () => {
  if (!postgres) return
  await killAll()
  await Effect.runPromise(Effect.provide(dropTables(run.prefix), Cluster.layerSql({ settings: run.settings }))).catch(
    () => {}
  )
  await Effect.runPromise(Scope.close(scope, undefined as any)).catch(() => {})
}, 20_000)

describe.runIf(postgres)("Monitoring traces: cluster", () => {
  it.live("caller → runner: the runner's spans of a call descend from the caller's Worker.method span", () =>
    Effect.gen(function* () {
      const App = Corps.layer([HasherLive], {
        name: "clustered",
        module: new URL("../cluster/workers.ts", import.meta.url).href,
        placement: { envs: { c: { kind: "cluster", storage: "sql" } }, default: "c" }
      }).pipe(
        Layer.provide(ClusterEnv.layer(run.settings)),
        Layer.provideMerge(Monitoring.layer({ tracing: true, otlp: { url: otlp.url } }))
      )
      yield* Effect.gen(function* () {
        const hasher = yield* Hasher
        assert.strictEqual(yield* hasher.hash({ text: "abc" }).pipe(Effect.withSpan("cluster-root")), "h:3:abc")
      }).pipe(Effect.provide(App), Effect.scoped)

      const descendsFrom = (span: ReceivedSpan, ancestor: ReceivedSpan): boolean => {
        let current: ReceivedSpan | undefined = span
        for (let hops = 0; current !== undefined && hops < 20; hops++) {
          if (current.parentSpanId === ancestor.spanId) return true
          const parentId: string | undefined = current.parentSpanId
          current = otlp.spans.find((s) => s.spanId === parentId)
        }
        return false
      }
      yield* Effect.suspend(() => {
        const root = otlp.spans.find((s) => s.name === "cluster-root")
        const call = root && otlp.spans.find((s) => s.name === "Hasher.hash" && s.parentSpanId === root.spanId)
        const inRunner =
          call && otlp.spans.filter((s) => s.resource["corps.env"] === "cluster" && descendsFrom(s, call))
        return inRunner !== undefined && inRunner.length > 0 ? Effect.succeed(inRunner) : Effect.fail("not yet")
      }).pipe(
        Effect.retry(Schedule.spaced("100 millis")),
        Effect.timeout("30 seconds"),
        Effect.tap((spans) =>
          Effect.sync(() => {
            for (const span of spans) {
              assert.strictEqual(span.resource["corps.runner"], `127.0.0.1:${port}`)
              assert.strictEqual(span.resource["service.name"], "runner-test")
            }
            // The runner handles the call in a span of the same name (effect/cluster names it after the entity's Rpc).
            assert.include(
              spans.map((s) => s.name),
              "Hasher.hash"
            )
          })
        )
      )
    })
  )
})

/**
 * Monitoring across a real `corps runner` process on PostgreSQL:
 *
 * - a trace from the caller into the runner (exporting to the same OTLP
 *   receiver, CORPS_OTLP_URL): the runner's spans for the call descend from
 *   the caller's `Worker.method`;
 * - the runner's figures reach the caller through the runner-load table:
 *   the calls its Workers make among themselves (counted once, with the
 *   cluster Env as `caller`), its entity counts, and the runner itself as a
 *   slot of the Env in the Snapshot (pid, host, address, state, load).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime, Metric, Schedule, Scope } from "effect"
import * as Cluster from "../../src/cluster/Cluster.ts"
import * as ClusterEnv from "../../src/cluster/ClusterEnv.ts"
import { makeTargets } from "../../src/cluster/internal/Entities.ts"
import { Corps, Monitoring } from "../../src/index.ts"
import { Monitor, snapshot } from "../../src/monitoring/Monitor.ts"
import { dropTables, killAll, makeRun, ports, postgres, startRunner } from "../cluster/harness.ts"
import { AccountLive, Hasher, HasherLive, Teller, TellerLive } from "../cluster/workers.ts"
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

  it.live("a runner's figures reach the caller: calls among runners counted once, entities, the runner as a slot", () =>
    Effect.gen(function* () {
      const App = Corps.layer([TellerLive, AccountLive, HasherLive], {
        name: "bank",
        module: new URL("../cluster/workers.ts", import.meta.url).href,
        placement: { envs: { c: { kind: "cluster", storage: "sql" } }, default: "c" }
      }).pipe(
        Layer.provide(ClusterEnv.layer(run.settings)),
        Layer.provideMerge(Monitoring.layer({ metrics: true, intervalMillis: 100 })),
        Layer.provideMerge(Monitor.layer)
      )
      yield* Effect.gen(function* () {
        const teller = yield* Teller
        const runnerPid = yield* (yield* Hasher).pid()
        // Teller.depositTo runs on the runner and calls Account.deposit from there: a call the caller never sees.
        for (let i = 1; i <= 3; i++) assert.strictEqual(yield* teller.depositTo({ key: "figures", amount: 1 }), i)

        const series = (worker: string, method: string, caller: string) =>
          Effect.map(Metric.snapshot, (metrics) =>
            metrics.filter(
              (m) =>
                m.id === "corps_calls_total" &&
                m.attributes?.worker === worker &&
                m.attributes?.method === method &&
                m.attributes?.caller === caller
            )
          )
        const count = (worker: string, method: string, caller: string) =>
          Effect.map(series(worker, method, caller), (found) =>
            found.reduce((n, m) => n + (m.type === "Counter" ? Number(m.state.count) : 0), 0)
          )
        // Poll until the runner's next report has been read (about a second).
        const snap = yield* Effect.gen(function* () {
          const snap = yield* snapshot
          const env = snap.corps.envs.find((e) => e.name === "c")
          const slot = env?.slots.find((s) => s.pid === runnerPid)
          if (slot === undefined || (yield* count("Account", "deposit", "c")) < 3) return yield* Effect.fail("not yet")
          return snap
        }).pipe(Effect.retry(Schedule.spaced("100 millis")), Effect.timeout("30 seconds"))

        // Counted once each, by the runtime that made the call.
        assert.strictEqual(yield* count("Account", "deposit", "c"), 3)
        assert.strictEqual(yield* count("Account", "deposit", "local"), 0)
        assert.strictEqual(yield* count("Teller", "depositTo", "local"), 3)
        assert.strictEqual(yield* count("Teller", "depositTo", "c"), 0)
        const deposit = (yield* series("Account", "deposit", "c"))[0]!
        assert.strictEqual(deposit.attributes?.env, "c")
        assert.strictEqual(deposit.attributes?.corps, "bank")

        const env = snap.corps.envs.find((e) => e.name === "c")!
        assert.strictEqual(env.kind, "cluster")
        const slot = env.slots.find((s) => s.pid === runnerPid)!
        assert.strictEqual(slot.state, "serving")
        assert.strictEqual(slot.address, `127.0.0.1:${port}`)
        assert.isString(slot.host)
        assert.isAbove(slot.heapUsed ?? 0, 0)
        // The snapshot's figures: the runner's calls are the method's calls, and its Account entity is live.
        const account = snap.corps.workers.find((w) => w.name === "Account")!
        assert.strictEqual(account.methods.find((m) => m.method === "deposit")!.calls, 3)
        assert.isAtLeast(account.instances, 1)
      }).pipe(Effect.provide(App), Effect.scoped)
    })
  )
})

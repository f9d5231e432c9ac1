/**
 * Metrics of a monitored Corps, exact, in every Env kind: calls, failures
 * by tag, latency observations, calls in flight; calls an Env's Workers
 * make among themselves (which the caller never sees) reach the caller's
 * registry; slot gauges; and with monitoring off, nothing at all.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Metric, Schedule } from "effect"
import * as ClusterEnv from "../../src/cluster/ClusterEnv.ts"
import { Corps, Monitoring, type Placement } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { Calc, CalcLive, TallyLive } from "../fixtures/monitored.ts"

const fixtures = new URL("../fixtures/monitored.ts", import.meta.url).href

type Registry = Map<string, Metric.Metric.Metadata<any, any>>

/** Every series of the registry: id, attributes and state. */
const series = (registry: Registry) => Metric.snapshotUnsafe(Context.make(Metric.MetricRegistry, registry))

/** The state of the one series of `id` whose attributes include `match`, or undefined. */
const find = (registry: Registry, id: string, match: Record<string, string>): any => {
  const found = series(registry).filter(
    (s) => s.id === id && Object.entries(match).every(([k, v]) => (s.attributes as any)?.[k] === v)
  )
  assert.isAtMost(found.length, 1, `${id} ${JSON.stringify(match)} matches ${found.length} series`)
  return found[0]?.state
}

/** Waits (generously) until `check` holds: Env figures reach the caller at each collection. */
const eventually = (check: () => boolean) =>
  Effect.suspend(() => (check() ? Effect.void : Effect.fail("not yet"))).pipe(
    Effect.retry(Schedule.spaced("20 millis")),
    Effect.timeout("20 seconds")
  )

const placements: Record<string, Placement.Placement> = {
  local: {},
  thread: { envs: { pool: { kind: "thread", count: 1 } }, default: "pool" },
  process: { envs: { pool: { kind: "process", count: 1 } }, default: "pool" }
}

const monitored = (placement: Placement.Placement, registry: Registry, options?: Monitoring.Options) =>
  Corps.layer([CalcLive, TallyLive], { name: "shop", placement, module: fixtures }).pipe(
    Layer.provide(Monitoring.layer({ intervalMillis: 50, ...options })),
    Layer.provide(NodeEnv.layer),
    Layer.provide(Layer.succeed(Metric.MetricRegistry, registry))
  )

describe("Monitoring metrics", () => {
  for (const [kind, placement] of Object.entries(placements)) {
    const env = kind === "local" ? "local" : "pool"
    const call = { corps: "shop", worker: "Calc", env, caller: "local" }

    it.live(`${kind}: N calls count N, failures by tag, latency observed, in flight rises and falls`, () => {
      const registry: Registry = new Map()
      return Effect.gen(function* () {
        const calc = yield* Calc
        for (let i = 0; i < 25; i++) assert.strictEqual(yield* calc.add({ a: i, b: 1 }), i + 1)
        for (let i = 0; i < 3; i++) assert.isTrue(Exit.isFailure(yield* Effect.exit(calc.boom({ n: i }))))
        const add = { ...call, method: "add" }
        assert.deepStrictEqual(find(registry, "corps_calls_total", add), { count: 25, incremental: true })
        // Calls to another Env are all timed; FastPath calls, the first of each 10 ms tick (at least one).
        const latency = find(registry, "corps_call_duration_ms", add)
        if (kind === "local") assert.isTrue(latency.count >= 1 && latency.count <= 25, `${latency.count} timed`)
        else assert.strictEqual(latency.count, 25)
        assert.strictEqual(latency.buckets.at(-1)[1], latency.count)
        assert.isAbove(latency.sum, 0)
        const boom = { ...call, method: "boom" }
        assert.strictEqual(find(registry, "corps_calls_total", boom).count, 3)
        assert.strictEqual(find(registry, "corps_call_failures_total", { ...boom, error: "Oops" }).count, 3)
        assert.isUndefined(find(registry, "corps_call_failures_total", { ...add, error: "Oops" }))

        const hang = { ...call, method: "hang" }
        const held = yield* Effect.forkChild(calc.hang())
        yield* eventually(() => find(registry, "corps_calls_in_flight", hang)?.value === 1)
        yield* Fiber.interrupt(held)
        assert.strictEqual(find(registry, "corps_calls_in_flight", hang).value, 0)
        assert.strictEqual(find(registry, "corps_call_failures_total", { ...hang, error: "Interrupted" }).count, 1)
      }).pipe(Effect.provide(monitored(placement, registry)), Effect.scoped)
    })

    it.live(`${kind}: calls between the Workers of one Env are counted once, by that Env`, () => {
      const registry: Registry = new Map()
      return Effect.gen(function* () {
        const calc = yield* Calc
        for (let i = 0; i < 7; i++) yield* calc.viaTally({ key: `k${i % 2}` })
        const bump = { corps: "shop", worker: "Tally", method: "bump", env, caller: env }
        yield* eventually(() => find(registry, "corps_calls_total", bump)?.count === 7)
        // The caller made the Calc calls; Tally was called only from inside Calc's runtime.
        assert.strictEqual(find(registry, "corps_calls_total", { ...call, method: "viaTally" }).count, 7)
        // The caller's own series of Tally (its handles could call it) counted none of them.
        if (kind !== "local")
          assert.strictEqual(find(registry, "corps_calls_total", { ...bump, caller: "local" })?.count ?? 0, 0)
        // Two Tally instances live where Tally is placed.
        yield* eventually(
          () => find(registry, "corps_worker_instances", { corps: "shop", worker: "Tally", env })?.value === 2
        )
        assert.strictEqual(
          find(registry, "corps_worker_mailbox_depth", { corps: "shop", worker: "Tally", env }).value,
          0
        )
      }).pipe(Effect.provide(monitored(placement, registry)), Effect.scoped)
    })
  }

  it.live("embedded cluster: calls its entities make among themselves are counted once, by the cluster Env", () => {
    const registry: Registry = new Map()
    const placement: Placement.Placement = { envs: { c: { kind: "cluster", storage: "local" } }, default: "c" }
    return Effect.gen(function* () {
      const calc = yield* Calc
      for (let i = 0; i < 4; i++) yield* calc.viaTally({ key: `k${i % 2}` })
      const bump = { corps: "shop", worker: "Tally", method: "bump", env: "c" }
      // Recorded straight into the caller's registry: no collection to wait for.
      assert.strictEqual(find(registry, "corps_calls_total", { ...bump, caller: "c" }).count, 4)
      assert.strictEqual(find(registry, "corps_call_duration_ms", { ...bump, caller: "c" }).count, 4)
      assert.strictEqual(find(registry, "corps_calls_total", { ...bump, caller: "local" })?.count ?? 0, 0)
      assert.strictEqual(
        find(registry, "corps_calls_total", { corps: "shop", worker: "Calc", method: "viaTally", caller: "local" })
          .count,
        4
      )
    }).pipe(
      Effect.provide(
        Corps.layer([CalcLive, TallyLive], { name: "shop", placement, module: fixtures }).pipe(
          Layer.provide(Monitoring.layer({ intervalMillis: 50 })),
          Layer.provide(ClusterEnv.layer()),
          Layer.provide(Layer.succeed(Metric.MetricRegistry, registry))
        )
      ),
      Effect.scoped
    )
  })

  for (const kind of ["thread", "process"] as const) {
    it.live(`${kind}: each slot reports its state, pid, thread and load`, () => {
      const registry: Registry = new Map()
      return Effect.gen(function* () {
        const calc = yield* Calc
        yield* calc.add({ a: 1, b: 2 })
        const slot = { corps: "shop", env: "pool", index: "0" }
        yield* eventually(() => find(registry, "corps_env_slot_pid", slot)?.value > 0)
        assert.strictEqual(find(registry, "corps_env_slot_state", { ...slot, state: "serving" }).value, 1)
        assert.strictEqual(find(registry, "corps_env_slot_state", { ...slot, state: "stopped" }).value, 0)
        const pid = find(registry, "corps_env_slot_pid", slot).value
        const thread = find(registry, "corps_env_slot_thread_id", slot).value
        if (kind === "thread") {
          assert.strictEqual(pid, process.pid)
          assert.isAbove(thread, 0)
        } else {
          assert.notStrictEqual(pid, process.pid)
          assert.strictEqual(thread, 0)
        }
        assert.isAbove(find(registry, "corps_env_slot_heap_used_bytes", slot).value, 0)
        const utilization = find(registry, "corps_env_slot_utilization", slot).value
        assert.isTrue(utilization >= 0 && utilization <= 1)
        assert.strictEqual(find(registry, "corps_env_slot_restarts_total", slot).count, 0)
      }).pipe(Effect.provide(monitored(placements[kind]!, registry)), Effect.scoped)
    })
  }

  it.live("off: without Monitoring.layer the registry holds no effect-corps metric", () => {
    const registry: Registry = new Map()
    return Effect.gen(function* () {
      const calc = yield* Calc
      yield* calc.add({ a: 1, b: 2 })
      yield* calc.viaTally({ key: "a" })
      yield* Effect.exit(calc.boom({ n: 1 }))
      assert.deepStrictEqual(
        series(registry).filter((s) => Monitoring.metrics.isCorpsMetric(s.id)),
        []
      )
    }).pipe(
      Effect.provide(
        Corps.layer([CalcLive, TallyLive], { placement: placements.thread!, module: fixtures }).pipe(
          Layer.provide(NodeEnv.layer),
          Layer.provide(Layer.succeed(Metric.MetricRegistry, registry))
        )
      ),
      Effect.scoped
    )
  })

  it.live("metrics: false records nothing either", () => {
    const registry: Registry = new Map()
    return Effect.gen(function* () {
      const calc = yield* Calc
      yield* calc.add({ a: 1, b: 2 })
      assert.deepStrictEqual(series(registry), [])
    }).pipe(Effect.provide(monitored({}, registry, { metrics: false })), Effect.scoped)
  })

  it.live("closing the Corps takes its series out of the registry", () => {
    const registry: Registry = new Map()
    return Effect.gen(function* () {
      yield* Effect.gen(function* () {
        const calc = yield* Calc
        yield* calc.add({ a: 1, b: 2 })
        assert.isAbove(series(registry).length, 0)
      }).pipe(Effect.provide(monitored({}, registry)), Effect.scoped)
      assert.deepStrictEqual(series(registry), [])
    })
  })

  it.effect("bad options fail with MonitoringError", () =>
    Effect.gen(function* () {
      const rate = yield* Effect.flip(Monitoring.settings({ tracing: { sampleRate: 1.5 } }))
      assert.strictEqual(rate._tag, "MonitoringError")
      assert.strictEqual(rate.option, "tracing.sampleRate")
      const url = yield* Effect.flip(Monitoring.settings({ otlp: { url: "not a url" } }))
      assert.strictEqual(url.option, "otlp.url")
      const interval = yield* Effect.flip(Monitoring.settings({ intervalMillis: 0 }))
      assert.strictEqual(interval.option, "intervalMillis")
      const format = yield* Effect.flip(Monitoring.settings({ logFormat: "xml" as any }))
      assert.strictEqual(format.option, "logFormat")
      assert.include(format.message, "invalid monitoring option logFormat")
      const clientSpans = yield* Effect.flip(Monitoring.settings({ tracing: { clientSpans: "yes" as any } }))
      assert.strictEqual(clientSpans.option, "tracing.clientSpans")
      const built = yield* Effect.flip(Layer.build(Monitoring.layer({ tracing: { sampleRate: -1 } })))
      assert.strictEqual(built._tag, "MonitoringError")
    }).pipe(Effect.scoped)
  )

  it.effect("client spans by default only where the Envs' spans are not exported", () =>
    Effect.gen(function* () {
      const bare = yield* Monitoring.settings({ tracing: true })
      assert.deepStrictEqual(bare.tracing, { sampleRate: 1, clientSpans: true })
      const exported = yield* Monitoring.settings({
        tracing: { sampleRate: 0.5 },
        otlp: { url: "http://c:4318/v1/traces" }
      })
      assert.deepStrictEqual(exported.tracing, { sampleRate: 0.5, clientSpans: false })
      const asked = yield* Monitoring.settings({
        tracing: { clientSpans: true },
        otlp: { url: "http://c:4318/v1/traces" }
      })
      assert.isTrue(asked.tracing?.clientSpans)
    })
  )
})

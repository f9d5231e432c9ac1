/**
 * The caller's side of runners' figures (src/cluster/internal/RunnerWatch.ts),
 * against real PostgreSQL rows: a runner shows as a slot of the cluster Env
 * with its pid and load, its totals grow the caller's counts by what they
 * added, a runner whose row goes stale is `stopped`, and a new process at
 * the same address is a restart whose totals count from zero.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Metric, Redacted, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import { RunnerLoad } from "../../src/cluster/index.ts"
import { watch } from "../../src/cluster/internal/RunnerWatch.ts"
import { Recorder } from "../../src/internal/recorder.ts"
import { databaseUrl } from "./postgres.ts"

const postgres: boolean = inject("postgres")
const Sql = PgClient.layer({ url: Redacted.make(databaseUrl), onnotice: () => {} } as PgClient.PgPoolConfig)
const freshPrefix = () => `corps_rw_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`

type Registry = Map<string, Metric.Metric.Metadata<any, any>>

const figures = (calls: number, failures: number): RunnerLoad.Figures => ({
  calls: [
    {
      worker: "Account",
      method: "deposit",
      env: "cluster",
      calls,
      observed: calls,
      inFlight: 0,
      failures: failures === 0 ? [] : [["Overdrawn", failures]],
      buckets: [calls],
      sum: calls,
      min: 1,
      max: 1
    }
  ],
  workers: [{ worker: "Account", env: "cluster", instances: 2, mailbox: 1 }]
})

/** Writes a runner's row as a runner would: `ageMillis` old. */
const writeRow = (
  prefix: string,
  runner: string,
  row: { pid: number; startedAt: number; figures: RunnerLoad.Figures; ageMillis?: number }
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const at = (yield* Clock.currentTimeMillis) - (row.ageMillis ?? 0)
    yield* sql`INSERT INTO ${sql(`${prefix}_runner_load`)} (runner, at, utilization, in_flight, heap_used, pid, host, started_at, figures)
      VALUES (${runner}, ${at}, ${0.25}, ${0}, ${4096}, ${row.pid}, ${"box"}, ${row.startedAt}, ${JSON.stringify(row.figures)})
      ON CONFLICT (runner) DO UPDATE SET at = EXCLUDED.at, pid = EXCLUDED.pid, started_at = EXCLUDED.started_at,
        figures = EXCLUDED.figures`
  })

const value = (registry: Registry, id: string, match: Record<string, string>): number | undefined => {
  const found = Metric.snapshotUnsafe(Context.make(Metric.MetricRegistry, registry)).filter(
    (s) => s.id === id && Object.entries(match).every(([k, v]) => (s.attributes as any)?.[k] === v)
  )
  if (found.length === 0) return undefined
  const state = found[0]!.state as any
  return Number(state.count ?? state.value)
}

const eventually = (check: () => boolean) =>
  Effect.suspend(() => (check() ? Effect.void : Effect.fail("not yet"))).pipe(
    Effect.retry(Schedule.spaced("20 millis")),
    Effect.timeout("20 seconds")
  )

describe.runIf(postgres)("RunnerWatch (PostgreSQL)", () => {
  it.live("runners as slots: counts grow by what totals add, a stale row is stopped, a new process restarts", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      yield* Effect.addFinalizer(() =>
        Effect.orDie(
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP TABLE IF EXISTS ${sql(`${prefix}_runner_load`)}`)
        )
      )
      yield* RunnerLoad.read({ prefix })
      const registry: Registry = new Map()
      const recorder = new Recorder("bank", "local", Context.make(Metric.MetricRegistry, registry))
      yield* Effect.addFinalizer(() => Effect.sync(() => recorder.close()))
      yield* writeRow(prefix, "10.0.0.1:7000", { pid: 4242, startedAt: 1000, figures: figures(3, 1) })
      yield* watch({
        envName: "c",
        corpsId: "bank-1",
        corpsName: "bank",
        prefix,
        recorder,
        intervalMillis: 20,
        monitor: undefined,
        freshMillis: 2000
      })
      const slot = { corps: "bank", env: "c", index: "0" }
      const deposit = { corps: "bank", worker: "Account", method: "deposit", env: "c", caller: "c" }
      yield* eventually(() => value(registry, "corps_calls_total", deposit) === 3)
      assert.strictEqual(value(registry, "corps_env_slot_pid", slot), 4242)
      assert.strictEqual(value(registry, "corps_env_slot_state", { ...slot, state: "serving" }), 1)
      assert.strictEqual(value(registry, "corps_env_slot_utilization", slot), 0.25)
      assert.strictEqual(value(registry, "corps_call_failures_total", { ...deposit, error: "Overdrawn" }), 1)
      assert.strictEqual(value(registry, "corps_worker_instances", { corps: "bank", worker: "Account", env: "c" }), 2)

      // The same runner's totals grow: the caller's counts grow by the difference, read after read.
      yield* writeRow(prefix, "10.0.0.1:7000", { pid: 4242, startedAt: 1000, figures: figures(5, 1) })
      yield* eventually(() => value(registry, "corps_calls_total", deposit) === 5)
      // A second runner is slot 1. Once it shows, a later reading of the same totals has happened: it added nothing.
      yield* writeRow(prefix, "10.0.0.2:7000", { pid: 6000, startedAt: 3000, figures: figures(0, 0) })
      yield* eventually(() => value(registry, "corps_env_slot_pid", { ...slot, index: "1" }) === 6000)
      assert.strictEqual(value(registry, "corps_calls_total", deposit), 5)
      assert.strictEqual(value(registry, "corps_call_failures_total", { ...deposit, error: "Overdrawn" }), 1)

      // A new process at the same address: a restart, its totals counted from zero.
      yield* writeRow(prefix, "10.0.0.1:7000", { pid: 5151, startedAt: 2000, figures: figures(2, 0) })
      yield* eventually(() => value(registry, "corps_calls_total", deposit) === 7)
      assert.strictEqual(value(registry, "corps_env_slot_restarts_total", slot), 1)
      assert.strictEqual(value(registry, "corps_env_slot_pid", slot), 5151)

      // The first runner's row going stale makes it stopped; the other still serves.
      yield* writeRow(prefix, "10.0.0.1:7000", {
        pid: 5151,
        startedAt: 2000,
        figures: figures(2, 0),
        ageMillis: 60_000
      })
      yield* eventually(() => value(registry, "corps_env_slot_state", { ...slot, state: "stopped" }) === 1)
      assert.strictEqual(value(registry, "corps_env_slot_state", { ...slot, state: "serving" }), 0)
      assert.strictEqual(value(registry, "corps_env_slot_utilization", slot), 0)
      assert.strictEqual(value(registry, "corps_env_slot_state", { ...slot, index: "1", state: "serving" }), 1)
    }).pipe(Effect.scoped, Effect.provide(Sql))
  )
})

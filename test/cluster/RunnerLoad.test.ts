/**
 * Runner load reports in PostgreSQL and the recommended runner count made
 * from them (src/cluster/RunnerLoad.ts), against a real database: a runner's
 * report is there once its layer is up and gone once it stops, stale reports
 * do not count, and the recommender grows the count under sustained load
 * and holds it otherwise.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import { RunnerLoad } from "../../src/cluster/index.ts"
import { databaseUrl } from "./postgres.ts"

const postgres: boolean = inject("postgres")

const Sql = PgClient.layer({ url: Redacted.make(databaseUrl), onnotice: () => {} } as PgClient.PgPoolConfig)

/** A prefix (so a table) of its own per test. */
const freshPrefix = () => `corps_rl_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`

const dropTableOf = (prefix: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`DROP TABLE IF EXISTS ${sql(`${prefix}_runner_load`)}`
  }).pipe(Effect.orDie)

/** Writes a report as a runner would, `ageMillis` old. */
const writeReport = (prefix: string, runner: string, utilization: number, ageMillis = 0) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const at = (yield* Clock.currentTimeMillis) - ageMillis
    yield* sql`INSERT INTO ${sql(`${prefix}_runner_load`)} (runner, at, utilization, in_flight, heap_used)
      VALUES (${runner}, ${at}, ${utilization}, ${0}, ${1000})
      ON CONFLICT (runner) DO UPDATE SET at = EXCLUDED.at, utilization = EXCLUDED.utilization`
  })

describe.runIf(postgres)("RunnerLoad (PostgreSQL)", () => {
  it.live("a runner's report is there once its layer is built, and gone once it stops", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      yield* Effect.addFinalizer(() => dropTableOf(prefix))
      const during = yield* Effect.scoped(
        Effect.andThen(
          Layer.build(RunnerLoad.layerReport({ runner: "10.0.0.5:34431", prefix })),
          RunnerLoad.read({ prefix })
        )
      )
      assert.deepStrictEqual(
        during.map((r) => r.runner),
        ["10.0.0.5:34431"]
      )
      const report = during[0]!
      assert.isAtLeast(report.utilization!, 0)
      assert.isAtMost(report.utilization!, 1)
      assert.isAbove(report.heapUsed, 0)
      assert.strictEqual(report.inFlight, 0)
      // Its identity; no figures were given.
      assert.strictEqual(report.pid, process.pid)
      assert.isAbove(report.host.length, 0)
      assert.isAbove(report.startedAt, 0)
      assert.strictEqual(report.figures, undefined)
      assert.deepStrictEqual(yield* RunnerLoad.read({ prefix }), [])
    }).pipe(Effect.scoped, Effect.provide(Sql))
  )

  it.live("reports older than freshMillis do not count", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      yield* Effect.addFinalizer(() => dropTableOf(prefix))
      yield* RunnerLoad.read({ prefix })
      yield* writeReport(prefix, "a:1", 0.5)
      yield* writeReport(prefix, "b:1", 0.5, 10_000)
      const fresh = yield* RunnerLoad.read({ prefix, freshMillis: 5000 })
      assert.deepStrictEqual(
        fresh.map((r) => r.runner),
        ["a:1"]
      )
      assert.strictEqual((yield* RunnerLoad.read({ prefix, freshMillis: 60_000 })).length, 2)
    }).pipe(Effect.scoped, Effect.provide(Sql))
  )

  it.live("the recommender grows the runner count under sustained load, and holds it when the load is moderate", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      yield* Effect.addFinalizer(() => dropTableOf(prefix))
      yield* RunnerLoad.read({ prefix })
      yield* writeReport(prefix, "a:1", 1)
      yield* writeReport(prefix, "b:1", 1)
      const next = yield* RunnerLoad.recommender({
        bounds: { min: 1, max: 6 },
        policy: { upAfterMillis: 20 },
        prefix
      })
      const first = yield* next
      assert.deepStrictEqual([first.direction, first.target], ["hold", 2])
      assert.strictEqual(first.runners.length, 2)
      // The pressure must last: let 20 ms pass, with the runners still reporting full load.
      yield* Effect.sleep("25 millis")
      yield* writeReport(prefix, "a:1", 1)
      yield* writeReport(prefix, "b:1", 1)
      const second = yield* next
      // Two runners at 100% against a 75% target: 3 runners.
      assert.deepStrictEqual([second.direction, second.target], ["up", 3])
      assert.match(second.reason, /demand 3/)
      yield* writeReport(prefix, "a:1", 0.6)
      yield* writeReport(prefix, "b:1", 0.6)
      const moderate = yield* next
      assert.deepStrictEqual([moderate.direction, moderate.target], ["hold", 2])
    }).pipe(Effect.scoped, Effect.provide(Sql))
  )

  it.live("with no runner alive, the recommendation is the minimum", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      yield* Effect.addFinalizer(() => dropTableOf(prefix))
      const next = yield* RunnerLoad.recommender({ bounds: { min: 2, max: 4 }, prefix })
      const decision = yield* next
      assert.deepStrictEqual([decision.direction, decision.target], ["up", 2])
      assert.deepStrictEqual(decision.runners, [])
    }).pipe(Effect.scoped, Effect.provide(Sql))
  )

  it.live("a runner's figures are written with its load and read back decoded", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      yield* Effect.addFinalizer(() => dropTableOf(prefix))
      const figures: RunnerLoad.Figures = {
        calls: [
          {
            worker: "Account",
            method: "deposit",
            env: "cluster",
            calls: 3,
            observed: 3,
            inFlight: 1,
            failures: [["Overdrawn", 1]],
            buckets: [0, 3],
            sum: 1.5,
            min: 0.25,
            max: 0.75
          }
        ],
        workers: [{ worker: "Account", env: "cluster", instances: 2, mailbox: 0 }]
      }
      const read = yield* Effect.scoped(
        Effect.andThen(
          Layer.build(RunnerLoad.layerReport({ runner: "10.0.0.5:1", prefix, figures: Effect.succeed(figures) })),
          RunnerLoad.reader({ prefix })
        )
      )
      assert.deepStrictEqual(read[0]!.figures, figures)
    }).pipe(Effect.scoped, Effect.provide(Sql))
  )

  it.live("a table made by an earlier version gains the new columns; figures that do not decode are left out", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      yield* Effect.addFinalizer(() => dropTableOf(prefix))
      const sql = yield* SqlClient.SqlClient
      const table = sql(`${prefix}_runner_load`)
      yield* sql`CREATE TABLE ${table} (runner TEXT PRIMARY KEY, at BIGINT NOT NULL,
        utilization DOUBLE PRECISION NOT NULL, in_flight INTEGER NOT NULL, heap_used BIGINT NOT NULL)`
      yield* writeReport(prefix, "old:1", 0.5)
      const [old] = yield* RunnerLoad.read({ prefix })
      assert.deepStrictEqual([old!.runner, old!.pid, old!.host, old!.startedAt], ["old:1", 0, "", 0])
      yield* sql`UPDATE ${table} SET figures = ${'{"calls":"no"}'}`
      const [garbled] = yield* RunnerLoad.read({ prefix })
      assert.strictEqual(garbled!.figures, undefined)
      assert.strictEqual(garbled!.utilization, 0.5)
    }).pipe(Effect.scoped, Effect.provide(Sql))
  )
})

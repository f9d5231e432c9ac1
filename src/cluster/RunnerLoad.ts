/**
 * How busy each runner of a cluster is, and how many runners the cluster
 * should have. effect-corps does not start runners — systemd, Kubernetes or
 * a shell loop does — so it gives them what they need to decide:
 *
 * - every runner (`corps runner`, or any process built with
 *   `Runner.layer`) writes its load every second into the cluster's
 *   PostgreSQL database (table `<prefix>_runner_load`): event-loop
 *   utilisation (the same sampler as thread and process Envs,
 *   src/node/load.ts) and heap;
 * - {@link read} answers the fresh rows, one per live runner;
 * - {@link recommender} feeds them to the same pure decision that sizes
 *   thread and process Envs (`Scaling.decide`, through
 *   `Scaling.recommend`), with its hysteresis and cooldowns, and answers a
 *   recommended runner count.
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RunnerLoad } from "effect-corps/cluster"
 *
 * const next = yield* RunnerLoad.recommender({ bounds: { min: 2, max: 10 } })
 * const { target, reason } = yield* next // call every sampleMillis (docs/scaling.md has a recipe)
 * ```
 *
 * @since 0.3.0
 */
import { Clock, Effect, Layer, Schedule } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { sampler } from "../node/load.ts"
import * as Scaling from "../Scaling.ts"

/**
 * One runner's last report.
 *
 * @since 0.3.0
 * @category models
 */
export interface Report extends Scaling.RunnerLoad {
  /** When it was written, epoch milliseconds. */
  readonly at: number
  readonly heapUsed: number
}

const validPrefix = /^[a-z_][a-z0-9_]{0,40}$/

const tableOf = (prefix: string | undefined): string => {
  const name = prefix ?? "corps"
  // The cluster's own prefix check (Cluster.layerSql) refuses a bad one with a typed error first.
  if (!validPrefix.test(name)) throw new Error(`invalid cluster table prefix: ${name}`)
  return `${name}_runner_load`
}

const createTable = (sql: SqlClient.SqlClient, table: string) =>
  sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
    runner TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    utilization DOUBLE PRECISION NOT NULL,
    in_flight INTEGER NOT NULL,
    heap_used BIGINT NOT NULL
  )`.pipe(
    // Several runners creating the table at once race on PostgreSQL's catalog: one retry settles it.
    Effect.retry({ times: 1 }),
    Effect.asVoid
  )

/**
 * Writes this process' load as runner `runner` (its `host:port`) every
 * `everyMillis` (default 1000) until the scope closes; its row is deleted
 * then, so a stopped runner stops counting at once (a crashed one stops
 * counting once its row is older than {@link read}'s `freshMillis`).
 *
 * @since 0.3.0
 * @category layers
 */
export const layerReport = (options: {
  readonly runner: string
  readonly prefix?: string | undefined
  readonly everyMillis?: number | undefined
}): Layer.Layer<never, SqlError.SqlError, SqlClient.SqlClient> =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const table = tableOf(options.prefix)
      yield* createTable(sql, table)
      const sample = sampler()
      const write = Effect.gen(function* () {
        const load = sample()
        const at = yield* Clock.currentTimeMillis
        yield* sql`INSERT INTO ${sql(table)} (runner, at, utilization, in_flight, heap_used)
          VALUES (${options.runner}, ${at}, ${load.utilization}, ${0}, ${load.heapUsed})
          ON CONFLICT (runner) DO UPDATE SET at = EXCLUDED.at, utilization = EXCLUDED.utilization,
            in_flight = EXCLUDED.in_flight, heap_used = EXCLUDED.heap_used`
      })
      yield* Effect.addFinalizer(() => Effect.ignore(sql`DELETE FROM ${sql(table)} WHERE runner = ${options.runner}`))
      // The first report is written before the layer is up, so a runner counts as soon as it serves.
      yield* write
      // A failed write (the database briefly away) is skipped: the next one comes a second later.
      yield* Effect.forkScoped(Effect.repeat(Effect.ignore(write), Schedule.spaced(options.everyMillis ?? 1000)))
    })
  )

/**
 * The reports of the runners alive now: rows written within `freshMillis`
 * (default 5000), by runner name.
 *
 * @since 0.3.0
 * @category reading
 */
export const read = (
  options: { readonly prefix?: string | undefined; readonly freshMillis?: number | undefined } = {}
): Effect.Effect<ReadonlyArray<Report>, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const table = tableOf(options.prefix)
    yield* createTable(sql, table)
    const since = (yield* Clock.currentTimeMillis) - (options.freshMillis ?? 5000)
    const rows = yield* sql<{
      runner: string
      at: string | number
      utilization: number
      in_flight: number
      heap_used: string | number
    }>`SELECT runner, at, utilization, in_flight, heap_used FROM ${sql(table)} WHERE at >= ${since} ORDER BY runner`
    return rows.map((row) => ({
      runner: row.runner,
      at: Number(row.at),
      utilization: Number(row.utilization),
      inFlight: Number(row.in_flight),
      heapUsed: Number(row.heap_used)
    }))
  })

/**
 * A recommended runner count, from the runners' reports: each run of the
 * returned Effect reads {@link read} and makes one decision, remembering the
 * previous ones (pressure and slack must last, as for threads). Run it every
 * `policy.sampleMillis` or so; `target` is the count to run, `direction`
 * whether it changed.
 *
 * @since 0.3.0
 * @category deciding
 */
export const recommender = (options: {
  readonly bounds: Scaling.Bounds
  readonly policy?: Scaling.Policy | undefined
  readonly prefix?: string | undefined
  readonly freshMillis?: number | undefined
}): Effect.Effect<Effect.Effect<Recommendation, SqlError.SqlError, SqlClient.SqlClient>> =>
  Effect.sync(() => {
    const policy = Scaling.resolve(options.policy)
    let state: Scaling.State | undefined
    return Effect.gen(function* () {
      const runners = yield* read(options)
      const at = yield* Clock.currentTimeMillis
      const decision = Scaling.recommend(policy, options.bounds, state ?? Scaling.initial(runners.length), at, runners)
      state = decision.state
      return { ...decision, runners }
    })
  })

/**
 * A recommendation, with the reports it was made from.
 *
 * @since 0.3.0
 * @category models
 */
export interface Recommendation extends Scaling.Decision {
  readonly runners: ReadonlyArray<Report>
}

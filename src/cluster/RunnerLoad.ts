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
import { hostname } from "node:os"
import { Clock, Effect, Layer, Schedule, Schema } from "effect"
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
  /** The runner's process id (0 when written by an older runner). */
  readonly pid: number
  /** The host name of the machine it runs on (empty when unknown). */
  readonly host: string
  /** When the runner started reporting, epoch milliseconds: a new value under the same address is a new process. */
  readonly startedAt: number
  /** The runner's monitoring figures since it started (absent when it records none). */
  readonly figures?: Figures | undefined
}

const CallTotals = Schema.Struct({
  worker: Schema.String,
  method: Schema.String,
  env: Schema.String,
  calls: Schema.Number,
  observed: Schema.Number,
  inFlight: Schema.Number,
  failures: Schema.Array(Schema.Tuple([Schema.String, Schema.Number])),
  buckets: Schema.Array(Schema.Number),
  sum: Schema.Number,
  min: Schema.Number,
  max: Schema.Number
})

const WorkerGauges = Schema.Struct({
  worker: Schema.String,
  env: Schema.String,
  instances: Schema.Number,
  mailbox: Schema.Number
})

/**
 * What a runner reports of the calls its own Workers made (to any Worker of
 * the cluster), cumulative since it started, and of the entities it hosts
 * now. Calls it serves are not in it: the runtime that makes a call counts
 * it (docs/monitoring.md). `min`/`max` are 0 before a first timed call
 * (JSON has no infinity; `observed` is then 0).
 *
 * @since 0.4.0
 * @category models
 */
export const Figures = Schema.Struct({
  calls: Schema.Array(CallTotals),
  workers: Schema.Array(WorkerGauges)
})

/**
 * @since 0.4.0
 * @category models
 */
export type Figures = typeof Figures.Type

const FiguresJson = Schema.fromJsonString(Figures)
const decodeFigures = Schema.decodeUnknownOption(FiguresJson)

const validPrefix = /^[a-z_][a-z0-9_]{0,40}$/

const tableOf = (prefix: string | undefined): string => {
  const name = prefix ?? "corps"
  // The cluster's own prefix check (Cluster.layerSql) refuses a bad one with a typed error first.
  if (!validPrefix.test(name)) throw new Error(`invalid cluster table prefix: ${name}`)
  return `${name}_runner_load`
}

const createTable = (sql: SqlClient.SqlClient, table: string) =>
  Effect.gen(function* () {
    yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
      runner TEXT PRIMARY KEY,
      at BIGINT NOT NULL,
      utilization DOUBLE PRECISION NOT NULL,
      in_flight INTEGER NOT NULL,
      heap_used BIGINT NOT NULL,
      pid INTEGER NOT NULL DEFAULT 0,
      host TEXT NOT NULL DEFAULT '',
      started_at BIGINT NOT NULL DEFAULT 0,
      figures TEXT
    )`
    // A table made by an earlier version lacks the identity and figures columns. Checked first: an
    // ALTER TABLE locks the table even when it changes nothing, and readers run this every second.
    const has = yield* sql<{ n: number | string }>`SELECT count(*) AS n FROM information_schema.columns
      WHERE table_name = ${table} AND column_name = 'figures'`
    if (Number(has[0]?.n ?? 0) === 0) {
      yield* sql`ALTER TABLE ${sql(table)} ADD COLUMN IF NOT EXISTS pid INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS host TEXT NOT NULL DEFAULT '',
        ADD COLUMN IF NOT EXISTS started_at BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS figures TEXT`
    }
  }).pipe(
    // Several runners creating the table at once race on PostgreSQL's catalog: a retry settles it.
    Effect.retry({ times: 2 }),
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
  /**
   * The runner's monitoring figures, read before each write (cumulative
   * since it started); absent: none are written.
   */
  readonly figures?: Effect.Effect<Figures> | undefined
}): Layer.Layer<never, SqlError.SqlError, SqlClient.SqlClient> =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const table = tableOf(options.prefix)
      yield* createTable(sql, table)
      const sample = sampler()
      const startedAt = yield* Clock.currentTimeMillis
      const host = hostname()
      const write = Effect.gen(function* () {
        const load = sample()
        const at = yield* Clock.currentTimeMillis
        const figures = options.figures === undefined ? null : JSON.stringify(yield* options.figures)
        yield* sql`INSERT INTO ${sql(table)} (runner, at, utilization, in_flight, heap_used, pid, host, started_at, figures)
          VALUES (${options.runner}, ${at}, ${load.utilization}, ${0}, ${load.heapUsed}, ${process.pid}, ${host},
            ${startedAt}, ${figures})
          ON CONFLICT (runner) DO UPDATE SET at = EXCLUDED.at, utilization = EXCLUDED.utilization,
            in_flight = EXCLUDED.in_flight, heap_used = EXCLUDED.heap_used, pid = EXCLUDED.pid,
            host = EXCLUDED.host, started_at = EXCLUDED.started_at, figures = EXCLUDED.figures`
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
  // A reader of its own per run: every run makes (or brings up to date) the table first.
  Effect.suspend(() => reader(options))

/** The rows written since `since` (the table exists), by runner name. */
const readFresh = (sql: SqlClient.SqlClient, table: string, since: number) =>
  Effect.map(
    sql<{
      runner: string
      at: string | number
      utilization: number
      in_flight: number
      heap_used: string | number
      pid: number
      host: string
      started_at: string | number
      figures: string | null
    }>`SELECT runner, at, utilization, in_flight, heap_used, pid, host, started_at, figures
      FROM ${sql(table)} WHERE at >= ${since} ORDER BY runner`,
    (rows): ReadonlyArray<Report> =>
      rows.map((row) => {
        // Figures that do not decode (another version's, say) are left out: the load still counts.
        const figures = row.figures === null ? undefined : decodeFigures(row.figures)
        return {
          runner: row.runner,
          at: Number(row.at),
          utilization: Number(row.utilization),
          inFlight: Number(row.in_flight),
          heapUsed: Number(row.heap_used),
          pid: Number(row.pid),
          host: row.host,
          startedAt: Number(row.started_at),
          ...(figures === undefined || figures._tag === "None" ? {} : { figures: figures.value })
        }
      })
  )

/**
 * {@link read} for a caller that polls every second: the returned Effect
 * makes (or brings up to date) the table on its first run only, then each
 * run is one `SELECT`.
 *
 * @since 0.4.0
 * @category reading
 */
export const reader = (
  options: { readonly prefix?: string | undefined; readonly freshMillis?: number | undefined } = {}
): Effect.Effect<ReadonlyArray<Report>, SqlError.SqlError, SqlClient.SqlClient> => {
  let ready = false
  return Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const table = tableOf(options.prefix)
    if (!ready) {
      yield* createTable(sql, table)
      ready = true
    }
    const since = (yield* Clock.currentTimeMillis) - (options.freshMillis ?? 5000)
    return yield* readFresh(sql, table, since)
  })
}

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

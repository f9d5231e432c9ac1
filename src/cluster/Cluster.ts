/**
 * Cluster deployments: the one place where sharding settings live, the
 * storage behind them, and the layers that make a process a runner (serving
 * entities) or a client (calling them).
 *
 * | storage | what                                                                  |
 * | ------- | --------------------------------------------------------------------- |
 * | `sql`   | PostgreSQL (`@effect/sql-pg`): runners on many hosts, durable messages |
 * | `local` | everything in this process, in memory: no server, nothing durable      |
 *
 * Settings that every process must agree on (`shardsPerGroup`, the shard-lock
 * timings, the secret) are written to `<prefix>_corps_settings` by the first
 * process and checked by every later one: a process started with different
 * settings fails with {@link SettingsMismatch} instead of hanging its calls.
 *
 * @since 0.1.0
 */
import { createHmac } from "node:crypto"
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import { PgClient } from "@effect/sql-pg"
import { Cause, Config, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import {
  type MessageStorage,
  RunnerAddress,
  RunnerHealth,
  RunnerServer,
  Runners,
  Sharding,
  ShardingConfig,
  SqlMessageStorage,
  SqlRunnerStorage,
  TestRunner
} from "effect/cluster"
import { RpcSerialization } from "effect/rpc"
import { SqlClient } from "effect/sql"
import * as Auth from "./internal/Auth.ts"
import * as LostCalls from "./internal/LostCalls.ts"

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * This process' cluster settings differ from those the cluster was started
 * with. Calls would silently hang (shards would be computed differently), so
 * the process refuses to join. Use the same settings everywhere, or a new
 * table prefix for a new cluster.
 *
 * @since 0.1.0
 * @category errors
 */
export class SettingsMismatch extends Schema.TaggedError<SettingsMismatch>()("ClusterSettingsMismatch", {
  setting: Schema.String,
  stored: Schema.String,
  local: Schema.String
}) {
  override get message(): string {
    // The stored value is a keyed hash of the secret: useless to show, and the fix is not "use that value".
    if (this.setting === "secretCheck") {
      return "this process' cluster secret (CORPS_CLUSTER_SECRET) is not the one the cluster was started with: set CORPS_CLUSTER_SECRET to the secret its runners and clients use (or use another CORPS_CLUSTER_PREFIX to start a separate cluster)"
    }
    return `cluster setting ${this.setting} is ${this.stored} in the cluster but ${this.local} here`
  }
}

/**
 * The cluster could not be joined: storage unreachable, missing settings,
 * the runner's address already in use.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClusterStartError extends Schema.TaggedError<ClusterStartError>()("ClusterStartError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot join the cluster: ${this.reason}`
  }
}

/**
 * A failover timing of the cluster's settings cannot work: not a duration, too
 * short, or a lock refresh that does not come before the lock expires. Raised
 * before anything connects, by {@link layerSql} (and by {@link validateTimings}).
 *
 * @since 0.2.0
 * @category errors
 */
export class SettingsInvalid extends Schema.TaggedError<SettingsInvalid>()("ClusterSettingsInvalid", {
  setting: Schema.String,
  value: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cluster setting ${this.setting} (${this.value}) ${this.reason}`
  }
}

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/**
 * Failover timings. `fast` re-homes the entities of a killed runner within
 * about 4 s (lock expiry 3 s, lock refresh 1 s, health check 1 s, assignment
 * refresh 0.5 s: a lock refresh per second per runner in PostgreSQL);
 * `default` keeps effect/cluster's own timings (about 30 s). The explicit
 * timing settings ({@link Settings}) override the preset field by field.
 *
 * @since 0.1.0
 * @category models
 */
export type Failover = "fast" | "default"

/**
 * Settings of a cluster. `shardsPerGroup`, `prefix` and `secret` must be the
 * same in every process of one cluster.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  /** PostgreSQL URL (`storage: "sql"`). */
  readonly databaseUrl?: Redacted.Redacted<string> | undefined
  /** Shared secret of runners and clients (required with `storage: "sql"`). */
  readonly secret?: Redacted.Redacted<string> | undefined
  /** Table prefix: one prefix per cluster (default `corps`). */
  readonly prefix?: string | undefined
  /** Shards per group (default 300). */
  readonly shardsPerGroup?: number | undefined
  /** Failover timings (default `fast`). */
  readonly failover?: Failover | undefined
  /**
   * How long a runner's shard locks and registration outlive its last
   * refresh: a killed runner's shards move after at most this, plus one
   * `refreshAssignmentsInterval`. Whole seconds, at least 1 s (effect/cluster's
   * SQL storage counts it in seconds). Must match in every process.
   * `fast`: 3 s.
   */
  readonly shardLockExpiration?: Duration.Input | undefined
  /**
   * How often a runner refreshes its shard locks and heartbeat: shorter than
   * `shardLockExpiration` (effect/cluster refreshes at most every third of it
   * anyway). Must match in every process. `fast`: 1 s.
   */
  readonly shardLockRefreshInterval?: Duration.Input | undefined
  /**
   * How often the runner holding the health-check singleton pings the others
   * (a runner that fails five pings, 0.5 s apart, is marked unhealthy and
   * loses its shards before its locks expire). At least 100 ms. `fast`: 1 s.
   */
  readonly runnerHealthCheckInterval?: Duration.Input | undefined
  /**
   * How often every process re-reads runners and recomputes shard
   * assignments. At least 100 ms. `fast`: 0.5 s.
   */
  readonly refreshAssignmentsInterval?: Duration.Input | undefined
  /** Any other `ShardingConfig` field, for tuning. Overrides the above. */
  readonly sharding?: Partial<ShardingConfig.ShardingConfig["Service"]> | undefined
  /**
   * Encrypt runner traffic with TLS (on top of the shared-secret handshake).
   * Runners serve with `key` and `cert`; every process verifies runners
   * against `ca` (default: the system's CAs).
   */
  readonly tls?: Tls | undefined
}

/**
 * TLS for runner traffic: PEM text of the runners' key and certificate, and
 * of the CA that every process verifies runners against.
 *
 * @since 0.1.0
 * @category models
 */
export type Tls = Auth.Tls

/**
 * Reads {@link Settings} from the environment: `CORPS_DATABASE_URL`,
 * `CORPS_CLUSTER_SECRET`, `CORPS_CLUSTER_PREFIX`, `CORPS_SHARDS_PER_GROUP`,
 * `CORPS_CLUSTER_FAILOVER`, the failover timings `CORPS_SHARD_LOCK_EXPIRATION`,
 * `CORPS_SHARD_LOCK_REFRESH_INTERVAL`, `CORPS_RUNNER_HEALTH_CHECK_INTERVAL`,
 * `CORPS_REFRESH_ASSIGNMENTS_INTERVAL` (durations such as `3 seconds` or
 * `500 millis`), and for TLS the PEM file paths `CORPS_CLUSTER_TLS_KEY`,
 * `CORPS_CLUSTER_TLS_CERT`, `CORPS_CLUSTER_TLS_CA`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const settingsFromEnv: Effect.Effect<Settings, Config.ConfigError> = Effect.gen(function* () {
  return yield* Config.all({
    databaseUrl: Config.option(Config.Redacted("CORPS_DATABASE_URL")),
    secret: Config.option(Config.Redacted("CORPS_CLUSTER_SECRET")),
    prefix: Config.option(Config.String("CORPS_CLUSTER_PREFIX")),
    shardsPerGroup: Config.option(Config.Int("CORPS_SHARDS_PER_GROUP")),
    failover: Config.option(Config.Literals(["fast", "default"] as const, "CORPS_CLUSTER_FAILOVER")),
    shardLockExpiration: Config.option(Config.Duration("CORPS_SHARD_LOCK_EXPIRATION")),
    shardLockRefreshInterval: Config.option(Config.Duration("CORPS_SHARD_LOCK_REFRESH_INTERVAL")),
    runnerHealthCheckInterval: Config.option(Config.Duration("CORPS_RUNNER_HEALTH_CHECK_INTERVAL")),
    refreshAssignmentsInterval: Config.option(Config.Duration("CORPS_REFRESH_ASSIGNMENTS_INTERVAL")),
    tlsKey: Config.option(Config.String("CORPS_CLUSTER_TLS_KEY")),
    tlsCert: Config.option(Config.String("CORPS_CLUSTER_TLS_CERT")),
    tlsCa: Config.option(Config.String("CORPS_CLUSTER_TLS_CA"))
  }).pipe(
    Effect.map((c) => ({
      databaseUrl: Option.getOrUndefined(c.databaseUrl),
      secret: Option.getOrUndefined(c.secret),
      prefix: Option.getOrUndefined(c.prefix),
      shardsPerGroup: Option.getOrUndefined(c.shardsPerGroup),
      failover: Option.getOrUndefined(c.failover),
      shardLockExpiration: Option.getOrUndefined(c.shardLockExpiration),
      shardLockRefreshInterval: Option.getOrUndefined(c.shardLockRefreshInterval),
      runnerHealthCheckInterval: Option.getOrUndefined(c.runnerHealthCheckInterval),
      refreshAssignmentsInterval: Option.getOrUndefined(c.refreshAssignmentsInterval),
      tls: Auth.tlsFromFiles(
        Option.getOrUndefined(c.tlsKey),
        Option.getOrUndefined(c.tlsCert),
        Option.getOrUndefined(c.tlsCa)
      )
    }))
  )
})

// A SIGKILLed runner's shards move when the survivors stop seeing it: its
// registration lapses (lock expiry after its last heartbeat, at most one
// refresh before the kill) or the health check marks it (one interval, then
// five failed pings 0.5 s apart), and then at the next assignment refresh.
// Its advisory locks go with its connection, so the new owner takes them at
// once. With 5 s / 1 s / 2 s / 1 s this came to 5.5–6.4 s; these bound it near 4 s.
// The expiry stays 3× the refresh: lock operations time out after
// min(refresh, expiry / 3), so a shorter expiry would make a loaded runner
// drop its own shards.
const fastFailover = {
  shardLockRefreshInterval: Duration.seconds(1),
  shardLockExpiration: Duration.seconds(3),
  runnerHealthCheckInterval: Duration.seconds(1),
  refreshAssignmentsInterval: Duration.millis(500),
  // Persisted messages a runner could not be told about are found by polling.
  entityMessagePollInterval: Duration.seconds(1)
} satisfies Partial<ShardingConfig.ShardingConfig["Service"]>

/** The timing fields of {@link Settings}, which are also `ShardingConfig` fields. */
const timingFields = [
  "shardLockExpiration",
  "shardLockRefreshInterval",
  "runnerHealthCheckInterval",
  "refreshAssignmentsInterval"
] as const

const explicitTimings = (settings: Settings): Partial<ShardingConfig.ShardingConfig["Service"]> => {
  const timings: Record<string, Duration.Input> = {}
  for (const field of timingFields) {
    const value = settings[field]
    if (value !== undefined) timings[field] = value
  }
  return timings
}

/**
 * The `ShardingConfig` a process runs with: defaults, then the failover
 * preset, then the explicit timings, then `shardsPerGroup`, then `sharding`,
 * then the runner's address. Not validated: see {@link validateTimings}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const shardingConfigOf = (
  settings: Settings,
  runner?: Runner | undefined
): ShardingConfig.ShardingConfig["Service"] => ({
  ...ShardingConfig.defaults,
  ...((settings.failover ?? "fast") === "fast" ? fastFailover : {}),
  ...explicitTimings(settings),
  ...(settings.shardsPerGroup === undefined ? {} : { shardsPerGroup: settings.shardsPerGroup }),
  ...settings.sharding,
  runnerAddress: runner === undefined ? Option.none() : Option.some(RunnerAddress.make(runner.host, runner.port)),
  runnerListenAddress:
    runner?.listenHost === undefined ? Option.none() : Option.some(RunnerAddress.make(runner.listenHost, runner.port))
})

const describeInput = (input: Duration.Input): string =>
  Option.match(Duration.fromInput(input), {
    onNone: () => (typeof input === "object" ? JSON.stringify(input) : String(input)),
    onSome: Duration.format
  })

/**
 * Checks the failover timings a process would run with (the result of
 * {@link shardingConfigOf}, so `sharding` overrides are checked too): each a
 * finite duration, `shardLockExpiration` whole seconds and at least 1 s,
 * `shardLockRefreshInterval` shorter than it, the two polling intervals at
 * least 100 ms. Returns them as `Duration`s. {@link layerSql} runs it first.
 *
 * @example
 * ```ts
 * const timings = Cluster.validateTimings(Cluster.shardingConfigOf({ shardLockExpiration: "2 seconds" }))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const validateTimings = (
  config: Pick<ShardingConfig.ShardingConfig["Service"], TimingField>
): Effect.Effect<Record<TimingField, Duration.Duration>, SettingsInvalid> =>
  Effect.suspend(() => {
    const checked = checkTimings(config)
    return checked instanceof SettingsInvalid ? Effect.fail(checked) : Effect.succeed(checked)
  })

type TimingField = (typeof timingFields)[number]

const checkTimings = (
  config: Pick<ShardingConfig.ShardingConfig["Service"], TimingField>
): Record<TimingField, Duration.Duration> | SettingsInvalid => {
  const timings = {} as Record<TimingField, Duration.Duration>
  for (const field of timingFields) {
    const input = config[field]
    const duration = Duration.fromInput(input)
    if (Option.isNone(duration) || !Duration.isFinite(duration.value) || Duration.toMillis(duration.value) <= 0) {
      return new SettingsInvalid({
        setting: field,
        value: describeInput(input),
        reason: "is not a finite, positive duration (e.g. 3 seconds, 500 millis)"
      })
    }
    timings[field] = duration.value
  }
  const expiration = Duration.toMillis(timings.shardLockExpiration)
  if (expiration < 1000 || expiration % 1000 !== 0) {
    return new SettingsInvalid({
      setting: "shardLockExpiration",
      value: Duration.format(timings.shardLockExpiration),
      reason: "must be whole seconds, at least 1 second: effect/cluster's SQL storage expires runners in whole seconds"
    })
  }
  if (Duration.toMillis(timings.shardLockRefreshInterval) >= expiration) {
    return new SettingsInvalid({
      setting: "shardLockRefreshInterval",
      value: Duration.format(timings.shardLockRefreshInterval),
      reason: `must be shorter than shardLockExpiration (${Duration.format(timings.shardLockExpiration)}), or the locks lapse between refreshes`
    })
  }
  for (const field of ["runnerHealthCheckInterval", "refreshAssignmentsInterval"] as const) {
    if (Duration.toMillis(timings[field]) < 100) {
      return new SettingsInvalid({
        setting: field,
        value: Duration.format(timings[field]),
        reason: "must be at least 100 millis: each poll queries PostgreSQL or pings every runner"
      })
    }
  }
  return timings
}

/**
 * Where a runner is reached (`host`, `port`: what other processes dial) and,
 * when different, the interface it listens on (`listenHost`, e.g. `0.0.0.0`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Runner {
  readonly host: string
  readonly port: number
  readonly listenHost?: string | undefined
}

/**
 * Parses `host:port`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseAddress = (address: string): Runner | undefined => {
  const at = address.lastIndexOf(":")
  const port = Number(address.slice(at + 1))
  if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined
  return { host: address.slice(0, at), port }
}

/**
 * The Corps id that handles of a cluster's Workers carry, on its runners and
 * in its callers alike (`cluster:<prefix>`): a handle passed from a caller to
 * a runner, from runner to runner, or back, reaches the same entity.
 *
 * @since 0.1.0
 * @category constructors
 */
export const handleCorps = (settings: Settings): string => `cluster:${settings.prefix ?? "corps"}`

const validPrefix = /^[a-z_][a-z0-9_]{0,40}$/

const prefixOf = (settings: Settings): string => {
  const prefix = settings.prefix ?? "corps"
  // Checked by the callers first (a typed error); a bad prefix here is a bug.
  if (!validPrefix.test(prefix)) throw new Error(`invalid cluster table prefix: ${prefix}`)
  return prefix
}

/**
 * The settings every process of a cluster must share, as stored. The secret
 * is stored as a keyed hash (it cannot be recovered from it): a process with
 * the wrong secret but valid database credentials would otherwise register
 * as a runner, take shards, and be unreachable by everyone else.
 */
const sharedSettings = (
  config: ShardingConfig.ShardingConfig["Service"],
  secret: Redacted.Redacted<string>
): Record<string, string> => ({
  shardsPerGroup: String(config.shardsPerGroup),
  shardGroups: [...config.availableShardGroups].sort().join(","),
  shardLockExpiration: Duration.format(Duration.fromInputUnsafe(config.shardLockExpiration)),
  shardLockRefreshInterval: Duration.format(Duration.fromInputUnsafe(config.shardLockRefreshInterval)),
  secretCheck: createHmac("sha256", Redacted.value(secret))
    .update("effect-corps/secret-check")
    .digest("hex")
    .slice(0, 16)
})

/**
 * Writes this process' shared settings if the cluster has none yet, then
 * compares: the first process to start decides, every later one must agree.
 */
const checkSettings = (
  prefix: string,
  config: ShardingConfig.ShardingConfig["Service"],
  secret: Redacted.Redacted<string>
): Effect.Effect<void, SettingsMismatch | ClusterStartError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const table = sql(`${prefix}_corps_settings`)
    const local = sharedSettings(config, secret)
    yield* sql`CREATE TABLE IF NOT EXISTS ${table} (name TEXT PRIMARY KEY, value TEXT NOT NULL)`
    for (const [name, value] of Object.entries(local)) {
      yield* sql`INSERT INTO ${table} (name, value) VALUES (${name}, ${value}) ON CONFLICT (name) DO NOTHING`
    }
    const rows = yield* sql<{ name: string; value: string }>`SELECT name, value FROM ${table}`
    for (const row of rows) {
      const mine = local[row.name]
      if (mine !== undefined && mine !== row.value) {
        return yield* new SettingsMismatch({ setting: row.name, stored: row.value, local: mine })
      }
    }
  }).pipe(
    Effect.catchTag("SqlError", (error) => Effect.fail(new ClusterStartError({ reason: error.message }))),
    // Two processes creating the table at once race on the catalog: one retry settles it.
    Effect.retry({ times: 1, while: (e) => e._tag === "ClusterStartError" })
  )

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/**
 * The services a cluster layer provides: `Sharding` (entity clients and, on
 * runners, entity hosting), `Runners` and `MessageStorage`.
 *
 * @since 0.1.0
 * @category models
 */
export type Services = Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage

/**
 * A process in a PostgreSQL-backed cluster: a runner when `runner` is given
 * (it listens, takes shards and serves the entities registered on it), else
 * a client that only calls. Also provides the `SqlClient`, so handlers can
 * use the same database.
 *
 * @example
 * ```ts
 * // A client-only process: calls entities served by runners.
 * const ClusterLive = Effect.map(Cluster.settingsFromEnv, (settings) => Cluster.layerSql({ settings }))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (options: {
  readonly settings: Settings
  readonly runner?: Runner | undefined
}): Layer.Layer<Services | SqlClient.SqlClient, SettingsMismatch | SettingsInvalid | ClusterStartError> => {
  const { settings, runner } = options
  if (settings.databaseUrl === undefined) {
    return failLayer<SettingsMismatch | SettingsInvalid | ClusterStartError>(
      new ClusterStartError({ reason: "no database URL (set CORPS_DATABASE_URL)" })
    )
  }
  if (settings.secret === undefined || Redacted.value(settings.secret).length < 16) {
    return failLayer<SettingsMismatch | SettingsInvalid | ClusterStartError>(
      new ClusterStartError({ reason: "no cluster secret of at least 16 characters (set CORPS_CLUSTER_SECRET)" })
    )
  }
  if (!validPrefix.test(settings.prefix ?? "corps")) {
    return failLayer<SettingsMismatch | SettingsInvalid | ClusterStartError>(
      new ClusterStartError({
        reason: `invalid cluster table prefix "${settings.prefix}": lower-case letters, digits and _, starting with a letter or _`
      })
    )
  }
  const prefix = prefixOf(settings)
  const config = shardingConfigOf(settings, runner)
  const timings = checkTimings(config)
  if (timings instanceof SettingsInvalid) {
    return failLayer<SettingsMismatch | SettingsInvalid | ClusterStartError>(timings)
  }
  const clientProtocol = Auth.layerClientProtocol(settings.secret, settings.tls)
  // effect/cluster's SocketRunner layers, rebuilt with two substitutions:
  // authenticated sockets (Auth.ts) and lost `once` calls failing (LostCalls.ts).
  const runners = LostCalls.layerRunners.pipe(Layer.provide(clientProtocol))
  const transport: Layer.Layer<Sharding.Sharding | Runners.Runners, any, any> =
    runner === undefined
      ? Sharding.layer.pipe(Layer.provideMerge(runners), Layer.provide(RunnerHealth.layerNoop))
      : RunnerServer.layer.pipe(
          Layer.provideMerge(Sharding.layer),
          Layer.provideMerge(runners),
          Layer.provide(Auth.layerServerProtocol(settings.secret, settings.tls)),
          Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(clientProtocol)))
        )
  const Sql = PgClient.layer({
    url: settings.databaseUrl,
    // Shard locks hold one connection per runner; leave room for handlers.
    maxConnections: 10,
    onnotice: () => {}
  } as PgClient.PgPoolConfig)
  const guarded = Layer.effectDiscard(checkSettings(prefix, config, settings.secret))
  return transport.pipe(
    Layer.provideMerge(SqlMessageStorage.layerWith({ prefix }).pipe(Layer.provide(NodeCrypto.layerDigest))),
    Layer.provide(Layer.orDie(SqlRunnerStorage.layerWith({ prefix }))),
    Layer.provide(guarded),
    Layer.provide(ShardingConfig.layer(config)),
    Layer.provide(RpcSerialization.layerSchemaBinary()),
    Layer.provideMerge(Sql),
    Layer.catchCause((cause) => {
      const error = Cause.squash(cause)
      return Layer.effectDiscard(
        Effect.fail(
          error instanceof SettingsMismatch || error instanceof SettingsInvalid || error instanceof ClusterStartError
            ? error
            : new ClusterStartError({ reason: error instanceof Error ? error.message : String(error) })
        )
      )
    })
  ) as Layer.Layer<Services | SqlClient.SqlClient, SettingsMismatch | SettingsInvalid | ClusterStartError>
}

const failLayer = <E>(error: E): Layer.Layer<any, E> => Layer.effectDiscard(Effect.fail(error)) as Layer.Layer<any, E>

/**
 * The embedded single-host cluster: one runner inside this process, storage
 * in memory (persisted methods work, but nothing survives the process). No
 * server, no secret; for development and tests.
 *
 * Why not `NodeClusterSocket.layer({ storage: "local" })`: it stores nothing,
 * so any persisted (idempotent) method dies; `SingleRunner` needs a SQL
 * server (there is no working SQLite client for effect 4.1).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocal: Layer.Layer<Services> = TestRunner.layer

/**
 * `corps runner`: imports a module, serves the Workers it exports as
 * `effect/cluster` entities, and joins the cluster until SIGINT / SIGTERM
 * (then it hands its shards over before exiting).
 *
 * ```sh
 * CORPS_CLUSTER_SECRET_FILE=/run/secrets/corps npx corps runner --module ./app.ts \
 *   --address 10.0.0.5:34431 --listen 0.0.0.0 --database-url postgres://…
 * ```
 *
 * Every flag falls back to an environment variable (`CORPS_MODULE`,
 * `CORPS_RUNNER_ADDRESS`, `CORPS_RUNNER_LISTEN`, `CORPS_DATABASE_URL`,
 * `CORPS_CLUSTER_PREFIX`, `CORPS_SHARDS_PER_GROUP`, `CORPS_CLUSTER_FAILOVER`,
 * `CORPS_CLUSTER_SECRET_FILE`). The secret itself is read from
 * `CORPS_CLUSTER_SECRET` or from a file, never from a flag, so it never shows
 * in a process list. The failover timings have variables only
 * (`CORPS_SHARD_LOCK_EXPIRATION` and the others of `Cluster.settingsFromEnv`).
 * Prints `corps-runner ready <host:port>` on stdout once it serves.
 *
 * @since 0.2.0
 */
import { Config, Effect, type FileSystem, Layer, Option, Redacted, Schema } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import * as Cluster from "../cluster/Cluster.ts"
import * as Runner from "../cluster/internal/Runner.ts"
import { secretFileUnlessVariable } from "../internal/secret.ts"

/**
 * The runner could not start: its module could not be served, the secret file
 * could not be read, or the cluster could not be joined. Printed as one line
 * (no stack trace) by the `corps` command, which then exits with code 1.
 *
 * @since 0.2.0
 * @category errors
 */
export class RunnerStartError extends Schema.TaggedError<RunnerStartError>()("CorpsRunnerStartError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `corps runner: ${this.reason}`
  }

  override get [CliError.userMessage](): string {
    return this.message
  }
}

const failovers = ["fast", "default"] as const

const positiveInteger = (value: string): Option.Option<number> => {
  const n = Number(value)
  return /^\d+$/.test(value.trim()) && Number.isSafeInteger(n) && n > 0 ? Option.some(n) : Option.none()
}

const fromEnv = (variable: string) => Config.String(variable)

/**
 * The flags of `corps runner`, each with its environment variable.
 *
 * @since 0.2.0
 * @category flags
 */
export const flags = {
  module: Flag.String("module").pipe(
    Flag.withDescription("Path or URL of the module whose Worker implementations this runner serves [CORPS_MODULE]"),
    Flag.withFallbackConfig(fromEnv("CORPS_MODULE"))
  ),
  address: Flag.String("address").pipe(
    Flag.withMetavar("host:port"),
    Flag.withDescription("Address other processes reach this runner at [CORPS_RUNNER_ADDRESS]"),
    Flag.withFallbackConfig(fromEnv("CORPS_RUNNER_ADDRESS")),
    Flag.filterMap(
      (address) => Option.fromUndefinedOr(Cluster.parseAddress(address)),
      () => "host:port, with a port from 1 to 65535 (--address or CORPS_RUNNER_ADDRESS)"
    )
  ),
  listen: Flag.String("listen").pipe(
    Flag.withMetavar("host"),
    Flag.withDescription("Interface to listen on, when not the address's host (e.g. 0.0.0.0) [CORPS_RUNNER_LISTEN]"),
    Flag.withFallbackConfig(fromEnv("CORPS_RUNNER_LISTEN")),
    Flag.optional
  ),
  databaseUrl: Flag.Redacted("database-url").pipe(
    Flag.withMetavar("url"),
    Flag.withDescription("PostgreSQL URL of the cluster's storage [CORPS_DATABASE_URL]"),
    Flag.withFallbackConfig(Config.Redacted("CORPS_DATABASE_URL")),
    Flag.optional
  ),
  prefix: Flag.String("prefix").pipe(
    Flag.withDescription("Table prefix: one per cluster, the same in all its processes [CORPS_CLUSTER_PREFIX]"),
    Flag.withFallbackConfig(fromEnv("CORPS_CLUSTER_PREFIX")),
    Flag.optional
  ),
  shards: Flag.Int("shards").pipe(
    Flag.withDescription("Shards per group, the same in all the cluster's processes [CORPS_SHARDS_PER_GROUP]"),
    Flag.withFallbackConfig(fromEnv("CORPS_SHARDS_PER_GROUP")),
    Flag.filterMap(
      (shards) => positiveInteger(String(shards)),
      () => "a positive integer (--shards or CORPS_SHARDS_PER_GROUP)"
    ),
    Flag.optional
  ),
  failover: Flag.Literals("failover", failovers).pipe(
    Flag.withDescription(
      "Failover timings: fast (entities of a lost runner move within ~4 s) or default (effect/cluster's, ~30 s); CORPS_SHARD_LOCK_EXPIRATION and the other timing variables override it field by field [CORPS_CLUSTER_FAILOVER]"
    ),
    Flag.withFallbackConfig(fromEnv("CORPS_CLUSTER_FAILOVER")),
    Flag.filterMap(
      (failover) =>
        Option.liftPredicate(failover, (f): f is Cluster.Failover => (failovers as ReadonlyArray<string>).includes(f)),
      () => `one of ${failovers.join(", ")} (--failover or CORPS_CLUSTER_FAILOVER)`
    ),
    Flag.optional
  ),
  secretFile: Flag.String("secret-file").pipe(
    Flag.withMetavar("path"),
    Flag.withDescription(
      "File holding the cluster secret, instead of CORPS_CLUSTER_SECRET [CORPS_CLUSTER_SECRET_FILE]"
    ),
    Flag.withFallbackConfig(fromEnv("CORPS_CLUSTER_SECRET_FILE")),
    Flag.optional
  )
}

/**
 * What `corps runner` was given, once parsed.
 *
 * @since 0.2.0
 * @category models
 */
export interface Input {
  readonly module: string
  readonly address: Cluster.Runner
  readonly listen: Option.Option<string>
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  readonly prefix: Option.Option<string>
  readonly shards: Option.Option<number>
  readonly failover: Option.Option<Cluster.Failover>
  readonly secretFile: Option.Option<string>
}

/**
 * A runner's start-up plan: the module's URL, where it serves, and the
 * cluster settings (the flags over `Cluster.settingsFromEnv`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Plan {
  readonly moduleUrl: string
  readonly runner: Cluster.Runner
  readonly settings: Cluster.Settings
}

/**
 * Resolves parsed flags into a {@link Plan}: reads the secret file, if any,
 * and refuses a secret given twice (file and `CORPS_CLUSTER_SECRET`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const plan = (input: Input): Effect.Effect<Plan, RunnerStartError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const env = yield* Cluster.settingsFromEnv.pipe(
      Effect.mapError((error) => new RunnerStartError({ reason: `invalid environment: ${error.message}` }))
    )
    let secret = env.secret
    if (Option.isSome(input.secretFile)) {
      const value = yield* secretFileUnlessVariable(
        "CORPS_CLUSTER_SECRET",
        secret !== undefined,
        input.secretFile.value
      ).pipe(Effect.mapError((reason) => new RunnerStartError({ reason })))
      secret = Redacted.make(value)
    }
    const runner: Cluster.Runner = Option.match(input.listen, {
      onNone: () => input.address,
      onSome: (listenHost) => ({ ...input.address, listenHost })
    })
    return {
      moduleUrl: Runner.toUrl(input.module),
      runner,
      settings: {
        ...env,
        secret,
        databaseUrl: Option.getOrElse(input.databaseUrl, () => env.databaseUrl),
        prefix: Option.getOrElse(input.prefix, () => env.prefix),
        shardsPerGroup: Option.getOrElse(input.shards, () => env.shardsPerGroup),
        failover: Option.getOrElse(input.failover, () => env.failover)
      }
    }
  })

/**
 * Serves a {@link Plan} until interrupted: loads the module, joins the
 * cluster, then prints `corps-runner ready <host:port>` on stdout.
 *
 * @since 0.2.0
 * @category running
 */
export const serve = (plan: Plan): Effect.Effect<never, RunnerStartError> =>
  Effect.gen(function* () {
    const served = yield* Runner.load(plan.moduleUrl)
    yield* Layer.build(
      Runner.layer(served, { settings: plan.settings, runner: plan.runner }).pipe(Layer.provide(yield* tracing(plan)))
    )
    yield* Effect.logInfo(`serving ${[...served.implementations.keys()].join(", ")} from ${plan.moduleUrl}`)
    process.stdout.write(`corps-runner ready ${plan.runner.host}:${plan.runner.port}\n`)
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.mapError((error) => new RunnerStartError({ reason: error.message }))
  )

/**
 * The runner's spans go to the OTLP/HTTP endpoint in `CORPS_OTLP_URL` (a
 * collector's `/v1/traces`), with `service.name` from `CORPS_OTLP_SERVICE`
 * (default `effect-corps`); the calls a caller sends carry its span, so a
 * handler's spans join the caller's trace. Unset: no exporter is loaded.
 */
const tracing = (plan: Plan): Effect.Effect<Layer.Layer<never>, RunnerStartError> =>
  Effect.suspend(() => {
    const url = process.env.CORPS_OTLP_URL
    if (url === undefined || url === "") return Effect.succeed(Layer.empty)
    if (!URL.canParse(url)) return Effect.fail(new RunnerStartError({ reason: `CORPS_OTLP_URL is not a URL: ${url}` }))
    const serviceName = process.env.CORPS_OTLP_SERVICE
    return Effect.map(
      Effect.promise(() => import("../monitoring/otlp.ts")),
      (otlp) =>
        otlp.tracerLayer(
          { url, ...(serviceName === undefined ? {} : { serviceName }) },
          { "corps.env": "cluster", "corps.runner": `${plan.runner.host}:${plan.runner.port}` }
        )
    )
  })

/**
 * The `runner` sub-command.
 *
 * @since 0.2.0
 * @category commands
 */
export const command = Command.make("runner", flags, (input) => Effect.flatMap(plan(input), serve)).pipe(
  Command.withDescription(
    "Serve the Workers a module exports as effect/cluster entities, until SIGINT or SIGTERM. The cluster secret comes from CORPS_CLUSTER_SECRET or --secret-file. Prints `corps-runner ready <host:port>` once serving."
  ),
  Command.withExamples([
    {
      command: "corps runner --module ./app.ts --address 10.0.0.5:34431 --listen 0.0.0.0",
      description: "Serve app.ts's Workers (CORPS_DATABASE_URL and CORPS_CLUSTER_SECRET set)"
    }
  ])
)

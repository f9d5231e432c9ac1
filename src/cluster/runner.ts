/**
 * A cluster runner process: imports a module, serves the Workers it exports
 * as `effect/cluster` entities, and joins the cluster until SIGINT / SIGTERM
 * (then it hands its shards over before exiting).
 *
 * ```sh
 * npx node src/cluster/runner.ts --module ./app.ts --address 10.0.0.5:34431 \
 *   --listen 0.0.0.0 --database-url postgres://… # secret: CORPS_CLUSTER_SECRET
 * ```
 *
 * Every flag has an environment variable: `CORPS_MODULE`, `CORPS_RUNNER_ADDRESS`,
 * `CORPS_RUNNER_LISTEN`, `CORPS_DATABASE_URL`, `CORPS_CLUSTER_PREFIX`,
 * `CORPS_SHARDS_PER_GROUP`, `CORPS_CLUSTER_FAILOVER`. The secret is read from
 * the environment only, so it never shows in a process list.
 *
 * Prints `corps-runner ready <host:port>` on stdout once it serves.
 *
 * The layer itself lives in `internal/Runner.ts`.
 *
 * @since 0.1.0
 */
import { parseArgs } from "node:util"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Redacted } from "effect"
import * as Cluster from "./Cluster.ts"
import * as Runner from "./internal/Runner.ts"

const main = Effect.gen(function* () {
  const { values } = parseArgs({
    options: {
      module: { type: "string" },
      address: { type: "string" },
      listen: { type: "string" },
      "database-url": { type: "string" },
      prefix: { type: "string" },
      shards: { type: "string" },
      failover: { type: "string" }
    },
    strict: true
  })
  const env = yield* Cluster.settingsFromEnv
  const module = values.module ?? process.env.CORPS_MODULE
  const address = values.address ?? process.env.CORPS_RUNNER_ADDRESS
  if (module === undefined || address === undefined) {
    return yield* Effect.die("usage: runner.ts --module <path|url> --address <host:port> [--listen <host>]")
  }
  const parsed = Cluster.parseAddress(address)
  if (parsed === undefined) return yield* Effect.die(`invalid --address ${address}: expected host:port`)
  const listenHost = values.listen ?? process.env.CORPS_RUNNER_LISTEN
  const runner: Cluster.Runner = listenHost === undefined ? parsed : { ...parsed, listenHost }
  const shards = values.shards === undefined ? undefined : Number(values.shards)
  if (shards !== undefined && !(Number.isInteger(shards) && shards > 0)) {
    return yield* Effect.die(`invalid --shards ${values.shards}: expected a positive integer`)
  }
  const failover = values.failover ?? env.failover
  const settings: Cluster.Settings = {
    ...env,
    ...(values["database-url"] === undefined ? {} : { databaseUrl: Redacted.make(values["database-url"]) }),
    ...(values.prefix === undefined ? {} : { prefix: values.prefix }),
    ...(shards === undefined ? {} : { shardsPerGroup: shards }),
    ...(failover === "fast" || failover === "default" ? { failover } : {})
  }
  const served = yield* Runner.load(module)
  yield* Layer.build(Runner.layer(served, { settings, runner }))
  yield* Effect.logInfo(`serving ${[...served.implementations.keys()].join(", ")} from ${module}`)
  process.stdout.write(`corps-runner ready ${address}\n`)
  return yield* Effect.never
}).pipe(Effect.scoped)

if (import.meta.main) {
  NodeRuntime.runMain(main)
}

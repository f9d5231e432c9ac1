/**
 * The runner of `bench/cluster.bench.ts`: serves the same counter twice —
 * as an effect-corps Worker (through src/cluster) and as an Entity written
 * directly on effect/cluster — so both paths share runners and storage.
 *
 * Started by the bench: `npx node bench/cluster-runner.ts --address 127.0.0.1:PORT`
 * with `CORPS_DATABASE_URL`, `CORPS_CLUSTER_SECRET`, `CORPS_CLUSTER_PREFIX` set.
 */
import { parseArgs } from "node:util"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { ClusterSchema, Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"
import * as Cluster from "../src/cluster/Cluster.ts"
import * as Runner from "../src/cluster/internal/Runner.ts"
import { Worker } from "../src/index.ts"

/** The effect-corps side. */
export class BenchCounter extends Worker.Service<BenchCounter>()("BenchCounter", {
  add: { payload: { n: Schema.Number }, success: Schema.Number },
  addPersisted: { payload: { n: Schema.Number }, success: Schema.Number, idempotent: true },
  where: { success: Schema.Number, idempotent: true }
}) {}

export const BenchCounterLive = BenchCounter.conc(
  Effect.sync(() => {
    let count = 0
    return {
      add: ({ n }) => (count += n),
      addPersisted: ({ n }) => (count += n),
      where: () => process.pid
    }
  })
)

/** A stateless Func: served by slot entities on every runner. */
export class BenchEcho extends Worker.Service<BenchEcho>()("BenchEcho", {
  echo: { payload: { n: Schema.Number }, success: Schema.Number }
}) {}

export const BenchEchoLive = BenchEcho.func({ echo: ({ n }) => n })

/** The same counter, directly on effect/cluster. */
export const Direct = Entity.make("DirectCounter", [
  Rpc.make("add", { payload: { n: Schema.Number }, success: Schema.Number }),
  Rpc.make("addPersisted", { payload: { n: Schema.Number }, success: Schema.Number }).annotate(
    ClusterSchema.Persisted,
    true
  )
])

export const DirectLive = Direct.toLayer(
  Effect.sync(() => {
    let count = 0
    return {
      add: ({ payload }) => Effect.sync(() => (count += payload.n)),
      addPersisted: ({ payload }) => Effect.sync(() => (count += payload.n))
    }
  }),
  { disableFatalDefects: true }
)

if (import.meta.main) {
  const { values } = parseArgs({ options: { address: { type: "string" } } })
  const runner = Cluster.parseAddress(values.address ?? "")
  if (runner === undefined) throw new Error("usage: cluster-runner.ts --address host:port")
  const main = Effect.gen(function* () {
    const settings = yield* Cluster.settingsFromEnv
    const served = yield* Runner.collect("bench/cluster-runner.ts", { BenchCounterLive, BenchEchoLive })
    yield* Layer.build(DirectLive.pipe(Layer.provideMerge(Runner.layer(served, { settings, runner }))))
    process.stdout.write(`corps-runner ready ${values.address}\n`)
    return yield* Effect.never
  }).pipe(Effect.scoped)
  NodeRuntime.runMain(main)
}

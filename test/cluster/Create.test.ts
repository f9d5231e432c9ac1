/**
 * `Worker.create` on a real cluster (two runner processes, PostgreSQL
 * storage): a failing builder ends the call with `InstanceStartFailed`
 * instead of being retried by the cluster for ever, and leaves the runner
 * serving; a closed instance answers `InstanceClosed` itself, as in every
 * other Env; `perEnv` and slot locations are `InvalidLocation`, saying why.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, ManagedRuntime, Stream } from "effect"
import type { SqlClient } from "effect/sql"
import * as Cluster from "../../src/cluster/Cluster.ts"
import * as ClusterEnv from "../../src/cluster/ClusterEnv.ts"
import { Corps, Worker } from "../../src/index.ts"
import { dropTables, killAll, makeRun, ports, postgres, type RunnerProcess, startRunner } from "./harness.ts"
import {
  Account,
  AccountLive,
  Resource,
  ResourceLive,
  SeedClient,
  SeedClientLive,
  SeedServer,
  SeedServerLive,
  User,
  UserLive
} from "./workers.ts"

const run = makeRun()
const [p1, p2] = ports(2) as [number, number]
let runners: Array<RunnerProcess> = []
let client: ManagedRuntime.ManagedRuntime<Cluster.Services | SqlClient.SqlClient, unknown>

const App = Corps.layer([ResourceLive, UserLive, AccountLive, SeedServerLive, SeedClientLive], {
  module: new URL("./workers.ts", import.meta.url).href,
  placement: { envs: { c: { kind: "cluster", storage: "sql" } }, default: "c" }
}).pipe(Layer.provide(ClusterEnv.layer(run.settings)))

const failureOf = (exit: Exit.Exit<unknown, unknown>): any => {
  if (Exit.isSuccess(exit)) return assert.fail("expected a failure")
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" ? error.value : Cause.squash(exit.cause)
}

beforeAll(async () => {
  client = ManagedRuntime.make(Cluster.layerSql({ settings: run.settings }))
  runners = await Promise.all([startRunner(run, p1), startRunner(run, p2)])
}, 40_000)

afterAll(async () => {
  await killAll()
  await client?.runPromise(dropTables(run.prefix)).catch(() => {})
  await client?.dispose()
}, 20_000)

describe.runIf(postgres)("Worker.create on a cluster of runners", () => {
  it("a failing builder is InstanceStartFailed at create, and the runners keep serving", async () => {
    const pids = runners.map((r) => r.pid)
    await Effect.runPromise(
      Effect.gen(function* () {
        // Several: their entities spread over the shards, so both runners are likely to meet a failing build.
        const failures = yield* Effect.forEach(
          Array.from({ length: 6 }, (_, i) => i),
          (i) => Effect.exit(Resource.create({ label: `bad-${i}`, fail: true })),
          { concurrency: "unbounded" }
        )
        for (const [i, exit] of failures.entries()) {
          const error = failureOf(exit)
          assert.strictEqual(error._tag, "InstanceStartFailed")
          assert.include(error.reason, `cannot open bad-${i}`)
          assert.isTrue(error.key.startsWith("$c:"))
        }
        // A keyed instance of a contract with an init cannot be built: the same typed error, on the first call.
        const keyed = yield* Resource.instance("plain-key")
        assert.strictEqual(failureOf(yield* Effect.exit(keyed.label()))._tag, "InstanceStartFailed")
        // …and again on the next call (the build is tried again, not replayed by the cluster).
        assert.strictEqual(failureOf(yield* Effect.exit(keyed.where()))._tag, "InstanceStartFailed")
        // The runners serve on: new instances start, other Workers answer.
        const fine = yield* Resource.create({ label: "fine" }, { num: 6 })
        assert.deepStrictEqual(
          yield* Effect.forEach(fine, (h) => h.label()),
          Array.from({ length: 6 }, () => "fine")
        )
        for (const h of fine) assert.include(pids, (yield* h.where()).pid)
        const account = (yield* Account).instance("after-failures")
        assert.strictEqual(yield* account.deposit({ amount: 4 }), 4)
      }).pipe(Effect.provide(App), Effect.scoped)
    )
    // The failures were the callers', not the cluster's: no runner retried an entity's construction.
    for (const runner of runners) assert.notInclude(runner.output(), "Defect building entity handlers")
  }, 60_000)

  it("a closed instance answers InstanceClosed; relayed by another Worker it is DownstreamFailed", async () => {
    await Effect.runPromise(
      Effect.gen(function* () {
        const r = yield* Resource.create({ label: "closable" })
        const pid = (yield* r.where()).pid
        const user = yield* User
        assert.strictEqual(yield* user.borrow({ resource: r }), "used closable")
        yield* Worker.close(r)
        const closed = failureOf(yield* Effect.exit(r.label()))
        assert.deepStrictEqual([closed._tag, closed.key], ["InstanceClosed", r.key])
        // A stream method refuses the same way.
        assert.strictEqual(failureOf(yield* Effect.exit(Stream.runCollect(r.letters())))._tag, "InstanceClosed")
        const relayed = failureOf(yield* Effect.exit(user.borrow({ resource: r })))
        assert.deepStrictEqual([relayed._tag, relayed.error._tag], ["DownstreamFailed", "InstanceClosed"])
        // Its finalizer ran on its runner: another instance there reads that runner's journal.
        let witness: typeof Resource.Service | undefined
        for (let i = 0; witness === undefined && i < 32; i++) {
          const other = yield* Resource.create({ label: `witness-${i}` })
          if ((yield* other.where()).pid === pid) witness = other
        }
        assert.isDefined(witness)
        assert.include(yield* witness!.journal(), "close closable")
      }).pipe(Effect.provide(App), Effect.scoped)
    )
  }, 60_000)

  it("perEnv and a slot are InvalidLocation: the entity's shard decides where an instance lives", async () => {
    await Effect.runPromise(
      Effect.gen(function* () {
        const perEnv = failureOf(yield* Effect.exit(Resource.create({ label: "a" }, { where: "perEnv" })))
        assert.strictEqual(perEnv._tag, "InvalidLocation")
        assert.include(perEnv.reason, 'only where: "auto"')
        const slot = failureOf(yield* Effect.exit(Resource.create({ label: "a" }, { where: { env: "c", index: 0 } })))
        assert.strictEqual(slot._tag, "InvalidLocation")
        assert.include(slot.reason, "cluster")
        // The same refusal on a runner: a client whose builder creates its servers perEnv cannot start.
        const client = failureOf(yield* Effect.exit(SeedClient.create({ name: "c", firstPrivateId: 1, globals: [] })))
        assert.deepStrictEqual([client._tag, client.error?._tag], ["InstanceStartFailed", "InvalidLocation"])
        // With "auto", a server is an entity like any other.
        const server = yield* SeedServer.create({ id: 5 })
        assert.strictEqual(yield* server.serve({ from: "t", n: 1 }), 5001)
      }).pipe(Effect.provide(App), Effect.scoped)
    )
  }, 30_000)
})

import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Duration, Effect, Exit, Layer, Redacted } from "effect"
import * as Cluster from "../../src/cluster/Cluster.ts"
import { clusterOptionsOf } from "../../src/cluster/internal/Entities.ts"
import * as Module from "../../src/cluster/internal/Module.ts"
import { Account, AccountLive, Hasher, HasherLive, LedgerLive } from "./workers.ts"

const failureOf = (exit: Exit.Exit<unknown, unknown>): any => {
  if (Exit.isSuccess(exit)) return assert.fail("expected a failure")
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" ? error.value : Cause.squash(exit.cause)
}

describe("cluster/Module", () => {
  it.effect("collects exported implementations by Worker name, with the cluster options given on them", () =>
    Effect.gen(function* () {
      const served = yield* Module.collect("m", { AccountLive, HasherLive, LedgerLive, helper: 42 })
      assert.deepStrictEqual([...served.implementations.keys()].sort(), ["Account", "Hasher", "Ledger"])
      assert.deepStrictEqual(clusterOptionsOf(served.implementations.get("Ledger")!), { volatile: ["ping"] })
      assert.isUndefined(clusterOptionsOf(served.implementations.get("Account")!))
    })
  )

  it.effect("a module still exporting clusterOptions is refused, with the way to migrate", () =>
    Effect.gen(function* () {
      const old = failureOf(
        yield* Effect.exit(
          Module.collect("m", { AccountLive, clusterOptions: { Account: { persisted: ["deposit"] } } })
        )
      )
      assert.strictEqual(old._tag, "ClusterModuleError")
      assert.include(old.reason, "clusterOptions export is no longer read")
      assert.include(old.reason, "{ cluster: { persisted:")
    })
  )

  it.effect("two implementations of one Worker, or none at all, are a ClusterModuleError", () =>
    Effect.gen(function* () {
      const other = Account.conc(Effect.succeed(null as any))
      const twice = failureOf(yield* Effect.exit(Module.collect("m", { AccountLive, other })))
      assert.strictEqual(twice._tag, "ClusterModuleError")
      assert.include(twice.reason, "two implementations of Worker Account")
      const none = failureOf(yield* Effect.exit(Module.collect("m", { x: 1 })))
      assert.include(none.reason, "no Worker implementation")
      const missing = failureOf(yield* Effect.exit(Module.load("file:///nonexistent/module.ts")))
      assert.strictEqual(missing._tag, "ClusterModuleError")
    })
  )
})

describe("cluster/Cluster settings", () => {
  it.effect("cluster options naming an unknown method, or persisting a stream, are a ClusterModuleError", () =>
    Effect.gen(function* () {
      // Typed code cannot write these (the casts stand for untyped JavaScript callers).
      const collect = (cluster: unknown) =>
        Effect.exit(Module.collect("m", { live: Account.conc(Effect.succeed({} as any), { cluster } as any) })).pipe(
          Effect.map(failureOf)
        )
      const method = yield* collect({ volatile: ["depsit"] })
      assert.strictEqual(method._tag, "ClusterModuleError")
      assert.include(method.reason, "Account.volatile names depsit")
      const both = yield* collect({ persisted: ["deposit"], volatile: ["deposit"] })
      assert.include(both.reason, "both as persisted and as volatile")
      const stream = yield* collect({ persisted: ["countdown"] })
      assert.include(stream.reason, "streams cannot be persisted")
    })
  )

  it("cluster options are typed by the Worker's methods", () => {
    // @ts-expect-error: no method `depsit`
    Account.conc(Effect.succeed({} as any), { cluster: { persisted: ["depsit"] } })
    // @ts-expect-error: streams cannot be persisted
    Account.conc(Effect.succeed({} as any), { cluster: { persisted: ["countdown"] } })
    const ok = Hasher.func({ hash: () => "", pid: () => 0 }, { cluster: { volatile: ["hash"], funcSlots: 8 } })
    assert.deepStrictEqual(clusterOptionsOf(ok), { volatile: ["hash"], funcSlots: 8 })
  })

  it.effect("an invalid table prefix is a ClusterStartError, not a defect", () =>
    Effect.gen(function* () {
      const bad = failureOf(
        yield* Effect.exit(
          Effect.scoped(
            Layer.build(
              Cluster.layerSql({
                settings: {
                  databaseUrl: Redacted.make("postgres://postgres@127.0.0.1:5432/test"),
                  secret: Redacted.make("x".repeat(20)),
                  prefix: "Shop"
                }
              })
            )
          )
        )
      )
      assert.strictEqual(bad._tag, "ClusterStartError")
      assert.include(bad.reason, "invalid cluster table prefix")
    })
  )

  it("parses runner addresses", () => {
    assert.deepStrictEqual(Cluster.parseAddress("10.0.0.5:34431"), { host: "10.0.0.5", port: 34431 })
    assert.deepStrictEqual(Cluster.parseAddress("[::1]:80"), { host: "[::1]", port: 80 })
    assert.isUndefined(Cluster.parseAddress("localhost"))
    assert.isUndefined(Cluster.parseAddress("host:99999"))
  })

  it("applies the failover preset, then explicit settings", () => {
    const fast = Cluster.shardingConfigOf({})
    assert.strictEqual(fast.shardsPerGroup, 300)
    assert.deepStrictEqual(fast.shardLockExpiration, Cluster.shardingConfigOf({ failover: "fast" }).shardLockExpiration)
    const tuned = Cluster.shardingConfigOf({ shardsPerGroup: 64, sharding: { shardsPerGroup: 32 } })
    assert.strictEqual(tuned.shardsPerGroup, 32)
    const runner = Cluster.shardingConfigOf({}, { host: "h", port: 1, listenHost: "0.0.0.0" })
    assert.strictEqual(runner.runnerAddress._tag, "Some")
    assert.strictEqual(runner.runnerListenAddress._tag, "Some")
    assert.strictEqual(Cluster.shardingConfigOf({}).runnerAddress._tag, "None")
  })

  it("explicit failover timings override the preset, and `sharding` overrides them", () => {
    const fast = Cluster.shardingConfigOf({})
    assert.deepStrictEqual(
      [fast.shardLockExpiration, fast.shardLockRefreshInterval, fast.runnerHealthCheckInterval],
      [Duration.seconds(3), Duration.seconds(1), Duration.seconds(1)]
    )
    assert.deepStrictEqual(fast.refreshAssignmentsInterval, Duration.millis(500))
    const slow = Cluster.shardingConfigOf({ failover: "default" })
    assert.deepStrictEqual(slow.shardLockExpiration, Duration.seconds(35))
    const tuned = Cluster.shardingConfigOf({
      failover: "default",
      shardLockExpiration: "4 seconds",
      refreshAssignmentsInterval: "250 millis",
      sharding: { refreshAssignmentsInterval: Duration.millis(300) }
    })
    assert.strictEqual(tuned.shardLockExpiration, "4 seconds")
    assert.deepStrictEqual(tuned.shardLockRefreshInterval, Duration.seconds(10))
    assert.deepStrictEqual(tuned.refreshAssignmentsInterval, Duration.millis(300))
  })

  it.effect("reads the failover timings from CORPS_* variables; a bad duration is a ConfigError", () =>
    Effect.gen(function* () {
      const read = (env: Record<string, string>) =>
        Effect.provideService(Cluster.settingsFromEnv, ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
      const settings = yield* read({
        CORPS_SHARD_LOCK_EXPIRATION: "4 seconds",
        CORPS_SHARD_LOCK_REFRESH_INTERVAL: "800 millis",
        CORPS_RUNNER_HEALTH_CHECK_INTERVAL: "2 seconds",
        CORPS_REFRESH_ASSIGNMENTS_INTERVAL: "250 millis"
      })
      assert.deepStrictEqual(
        [
          settings.shardLockExpiration,
          settings.shardLockRefreshInterval,
          settings.runnerHealthCheckInterval,
          settings.refreshAssignmentsInterval
        ],
        [Duration.seconds(4), Duration.millis(800), Duration.seconds(2), Duration.millis(250)]
      )
      const unset = yield* read({})
      assert.isUndefined(unset.shardLockExpiration)
      const bad = yield* Effect.flip(read({ CORPS_SHARD_LOCK_EXPIRATION: "3 sekonds" }))
      assert.strictEqual(bad._tag, "ConfigError")
      assert.include(bad.message, "CORPS_SHARD_LOCK_EXPIRATION")
    })
  )

  it.effect("failover timings that cannot work are a ClusterSettingsInvalid naming the setting", () =>
    Effect.gen(function* () {
      const invalid = (settings: Cluster.Settings) =>
        Effect.flip(Cluster.validateTimings(Cluster.shardingConfigOf(settings)))
      const cases: Array<[Cluster.Settings, string, string, string]> = [
        [{ shardLockExpiration: "3 sekonds" as any }, "shardLockExpiration", "3 sekonds", "not a finite, positive"],
        [{ shardLockExpiration: "Infinity" }, "shardLockExpiration", "Infinity", "not a finite, positive"],
        [{ runnerHealthCheckInterval: 0 }, "runnerHealthCheckInterval", "0", "not a finite, positive"],
        [{ shardLockExpiration: "2500 millis" }, "shardLockExpiration", "2s 500ms", "whole seconds"],
        [{ shardLockExpiration: "500 millis" }, "shardLockExpiration", "500ms", "at least 1 second"],
        [
          { shardLockExpiration: "2 seconds", shardLockRefreshInterval: "2 seconds" },
          "shardLockRefreshInterval",
          "2s",
          "shorter than shardLockExpiration (2s)"
        ],
        [{ refreshAssignmentsInterval: "50 millis" }, "refreshAssignmentsInterval", "50ms", "at least 100 millis"],
        [
          { sharding: { runnerHealthCheckInterval: Duration.millis(10) } },
          "runnerHealthCheckInterval",
          "10ms",
          "at least 100 millis"
        ]
      ]
      for (const [settings, setting, value, reason] of cases) {
        const error = yield* invalid(settings)
        assert.strictEqual(error._tag, "ClusterSettingsInvalid")
        assert.deepStrictEqual([error.setting, error.value], [setting, value])
        assert.include(error.message, reason)
      }
      const ok = yield* Cluster.validateTimings(
        Cluster.shardingConfigOf({ shardLockExpiration: "2 seconds", shardLockRefreshInterval: "1 second" })
      )
      assert.deepStrictEqual(ok.shardLockExpiration, Duration.seconds(2))
      assert.deepStrictEqual(ok.refreshAssignmentsInterval, Duration.millis(500))
    })
  )

  it.effect("a SQL cluster with invalid timings fails before it connects", () =>
    Effect.gen(function* () {
      // Nothing listens on port 1: reaching the database would fail with ClusterStartError instead.
      const error = failureOf(
        yield* Effect.exit(
          Effect.scoped(
            Layer.build(
              Cluster.layerSql({
                settings: {
                  databaseUrl: Redacted.make("postgres://x@127.0.0.1:1/x"),
                  secret: Redacted.make("x".repeat(20)),
                  shardLockExpiration: "5 seconds",
                  shardLockRefreshInterval: "6 seconds"
                }
              })
            )
          )
        )
      )
      assert.strictEqual(error._tag, "ClusterSettingsInvalid")
      assert.strictEqual(error.setting, "shardLockRefreshInterval")
      assert.strictEqual(
        error.message,
        "cluster setting shardLockRefreshInterval (6s) must be shorter than shardLockExpiration (5s), or the locks lapse between refreshes"
      )
    })
  )

  it.effect("a SQL cluster without a database URL or a strong secret fails with ClusterStartError", () =>
    Effect.gen(function* () {
      const noUrl = failureOf(
        yield* Effect.exit(
          Effect.scoped(Layer.build(Cluster.layerSql({ settings: { secret: Redacted.make("x".repeat(20)) } })))
        )
      )
      assert.strictEqual(noUrl._tag, "ClusterStartError")
      assert.include(noUrl.reason, "CORPS_DATABASE_URL")
      const weak = failureOf(
        yield* Effect.exit(
          Effect.scoped(
            Layer.build(
              Cluster.layerSql({
                settings: { databaseUrl: Redacted.make("postgres://x@127.0.0.1:1/x"), secret: Redacted.make("short") }
              })
            )
          )
        )
      )
      assert.include(weak.reason, "CORPS_CLUSTER_SECRET")
    })
  )
})

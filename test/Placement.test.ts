/**
 * Placements: decoding (every bad entry is a PlacementError naming its key),
 * resolving references against a Corps' Workers, reading from configuration
 * and files, and a Corps refusing to build under a bad placement.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, FileSystem, Layer } from "effect"
import type { PlacementError } from "../src/CorpsError.ts"
import { Corps, Placement } from "../src/index.ts"
import { Bank, GateLive, members } from "./fixtures/workers.ts"

const workers = ["Counter", "Relay"]

/** The PlacementError of a placement that must not resolve. */
const resolveError = (input: unknown) =>
  Effect.flip(Effect.flatMap(Placement.decode(input), (placement) => Placement.resolve(placement, workers)))

const provideConfig = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown(env))

describe("Placement", () => {
  describe("resolve", () => {
    it.effect("an empty placement puts every Worker in the local Env with the auto strategy", () =>
      Effect.gen(function* () {
        const resolved = yield* Placement.resolve(Placement.local, workers)
        assert.deepStrictEqual(
          [...resolved.entries()],
          [
            ["Counter", { envName: "local", env: { kind: "local" }, strategy: "auto", replicas: undefined }],
            ["Relay", { envName: "local", env: { kind: "local" }, strategy: "auto", replicas: undefined }]
          ]
        )
      })
    )

    it.effect("a named Env is used by the Workers that name it and by the default", () =>
      Effect.gen(function* () {
        const placement = yield* Placement.decode({
          default: "checked",
          envs: { checked: { kind: "local", checkSerialization: true }, plain: { kind: "local" } },
          workers: { Relay: "plain" }
        })
        const resolved = yield* Placement.resolve(placement, workers)
        assert.deepStrictEqual(resolved.get("Counter"), {
          envName: "checked",
          env: { kind: "local", checkSerialization: true },
          strategy: "auto",
          replicas: undefined
        })
        assert.deepStrictEqual(resolved.get("Relay"), {
          envName: "plain",
          env: { kind: "local" },
          strategy: "auto",
          replicas: undefined
        })
      })
    )

    it.effect("a kind name is an Env reference meaning that kind with its defaults", () =>
      Effect.gen(function* () {
        const placement = yield* Placement.decode({ workers: { Counter: "local" }, default: "local" })
        const resolved = yield* Placement.resolve(placement, workers)
        assert.deepStrictEqual(resolved.get("Counter"), {
          envName: "local",
          env: { kind: "local" },
          strategy: "auto",
          replicas: undefined
        })
      })
    )

    it.effect("strategy and replicas are kept", () =>
      Effect.gen(function* () {
        const placement = yield* Placement.decode({
          workers: { Counter: { env: "local", strategy: "pinned", replicas: 3 }, Relay: { env: "local" } }
        })
        const resolved = yield* Placement.resolve(placement, workers)
        assert.deepStrictEqual(resolved.get("Counter"), {
          envName: "local",
          env: { kind: "local" },
          strategy: "pinned",
          replicas: 3
        })
        assert.deepStrictEqual(resolved.get("Relay"), {
          envName: "local",
          env: { kind: "local" },
          strategy: "auto",
          replicas: undefined
        })
      })
    )

    it.effect("an unknown Worker is refused at workers.<name>", () =>
      Effect.gen(function* () {
        const error = yield* resolveError({ workers: { Nope: "local" } })
        assert.strictEqual(error._tag, "PlacementError")
        assert.strictEqual((error as PlacementError).key, "workers.Nope")
        assert.include(error.reason, "unknown Worker")
      })
    )

    it.effect("an unknown Env reference names the entry that holds it", () =>
      Effect.gen(function* () {
        const inObject = yield* resolveError({ workers: { Counter: { env: "gpu" } } })
        assert.strictEqual(inObject._tag, "PlacementError")
        assert.strictEqual(inObject.key, "workers.Counter.env")
        assert.include(inObject.reason, `unknown Env "gpu"`)
        const inString = yield* resolveError({ workers: { Counter: "gpu" } })
        assert.strictEqual(inString.key, "workers.Counter")
        assert.include(inString.reason, `unknown Env "gpu"`)
        const inDefault = yield* resolveError({ default: "gpu" })
        assert.strictEqual(inDefault.key, "default")
        assert.include(inDefault.reason, `unknown Env "gpu"`)
      })
    )

    it.effect("a kind name resolves to that kind with its defaults", () =>
      Effect.gen(function* () {
        const resolved = yield* Placement.resolve({ workers: { Counter: "thread" } }, ["Counter"])
        assert.deepStrictEqual(resolved.get("Counter")?.env, { kind: "thread" })
        assert.strictEqual(resolved.get("Counter")?.envName, "thread")
      })
    )
  })

  describe("decode", () => {
    it.effect("a valid placement decodes to itself", () =>
      Effect.gen(function* () {
        const input = {
          default: "local",
          envs: { cpu: { kind: "thread", count: 2 }, far: { kind: "host", hosts: ["h:1"] } },
          workers: { Counter: "local", Relay: { env: "cpu", strategy: "per-env", replicas: 4 } }
        }
        assert.deepStrictEqual(yield* Placement.decode(input), input as Placement.Placement)
      })
    )

    it.effect("a count that is not a positive integer is refused at envs.<name>.count", () =>
      Effect.gen(function* () {
        const zero = yield* Effect.flip(Placement.decode({ envs: { cpu: { kind: "thread", count: 0 } } }))
        assert.strictEqual(zero._tag, "PlacementError")
        assert.strictEqual(zero.key, "envs.cpu.count")
        const text = yield* Effect.flip(Placement.decode({ envs: { cpu: { kind: "thread", count: "two" } } }))
        assert.strictEqual(text.key, "envs.cpu.count")
        const fraction = yield* Effect.flip(Placement.decode({ envs: { cpu: { kind: "process", count: 1.5 } } }))
        assert.strictEqual(fraction.key, "envs.cpu.count")
      })
    )

    it.effect("replicas and strategy are checked at workers.<name>.<field>", () =>
      Effect.gen(function* () {
        const replicas = yield* Effect.flip(Placement.decode({ workers: { Counter: { env: "local", replicas: 0 } } }))
        assert.strictEqual(replicas.key, "workers.Counter.replicas")
        const strategy = yield* Effect.flip(
          Placement.decode({ workers: { Counter: { env: "local", strategy: "random" } } })
        )
        assert.strictEqual(strategy.key, "workers.Counter.strategy")
      })
    )

    it.effect("an unknown kind is refused at envs.<name>.kind", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Placement.decode({ envs: { x: { kind: "gpu" } } }))
        assert.strictEqual(error._tag, "PlacementError")
        assert.strictEqual(error.key, "envs.x.kind")
      })
    )

    it.effect("an unknown key at the root is refused, naming the key it resembles", () =>
      Effect.gen(function* () {
        const worker = yield* Effect.flip(Placement.decode({ worker: { Counter: "local" } }))
        assert.strictEqual(worker._tag, "PlacementError")
        assert.strictEqual(worker.key, "worker")
        assert.include(worker.reason, `unknown key "worker"`)
        assert.include(worker.reason, `did you mean "workers"?`)
        const defualt = yield* Effect.flip(Placement.decode({ defualt: "local" }))
        assert.strictEqual(defualt.key, "defualt")
        assert.include(defualt.reason, `did you mean "default"?`)
      })
    )

    it.effect("an unknown key in an Env is refused at envs.<name>.<key>, with the kind's own keys", () =>
      Effect.gen(function* () {
        const cuont = yield* Effect.flip(Placement.decode({ envs: { cpu: { kind: "thread", cuont: 2 } } }))
        assert.strictEqual(cuont.key, "envs.cpu.cuont")
        assert.strictEqual(
          cuont.reason,
          `unknown key "cuont" (did you mean "count"?); known keys here: kind, count, supervision, hangTimeoutMillis, spare, scaling, resourceLimits`
        )
        const nested = yield* Effect.flip(
          Placement.decode({ envs: { checked: { kind: "local", checkSerialisation: true } } })
        )
        assert.strictEqual(nested.key, "envs.checked.checkSerialisation")
        assert.include(nested.reason, `did you mean "checkSerialization"?`)
      })
    )

    it.effect("an unknown key in a Worker's entry is refused at workers.<name>.<key>", () =>
      Effect.gen(function* () {
        const replica = yield* Effect.flip(
          Placement.decode({ envs: { cpu: { kind: "thread" } }, workers: { Hasher: { env: "cpu", replica: 2 } } })
        )
        assert.strictEqual(replica.key, "workers.Hasher.replica")
        assert.strictEqual(
          replica.reason,
          `unknown key "replica" (did you mean "replicas"?); known keys here: env, strategy, replicas, supervision`
        )
        // The typo is reported, not the missing `env` it leaves behind.
        const evn = yield* Effect.flip(Placement.decode({ workers: { Hasher: { evn: "local" } } }))
        assert.strictEqual(evn.key, "workers.Hasher.evn")
        assert.include(evn.reason, `did you mean "env"?`)
      })
    )

    it.effect("an unknown key that resembles no known key is refused without a guess", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Placement.decode({ workers: {}, priority: "high" }))
        assert.strictEqual(error.key, "priority")
        assert.strictEqual(error.reason, `unknown key "priority"; known keys here: default, envs, workers`)
      })
    )

    it.effect("a misspelt or missing kind names the kind it resembles, or the known kinds", () =>
      Effect.gen(function* () {
        const typo = yield* Effect.flip(Placement.decode({ envs: { cpu: { kind: "thraed" } } }))
        assert.strictEqual(typo.key, "envs.cpu.kind")
        assert.include(typo.reason, `did you mean "thread"?`)
        const missing = yield* Effect.flip(Placement.decode({ envs: { cpu: { count: 2 } } }))
        assert.strictEqual(missing.key, "envs.cpu.kind")
        assert.include(missing.reason, "missing")
      })
    )

    it.effect("a value that is not an object is refused at the root", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Placement.decode(42))
        assert.strictEqual(error.key, "(root)")
      })
    )
  })

  describe("fromJson", () => {
    it.effect("parses and validates", () =>
      Effect.gen(function* () {
        const placement = yield* Placement.fromJson(`{"workers":{"Counter":"local"}}`)
        assert.deepStrictEqual(placement, { workers: { Counter: "local" } })
        const bad = yield* Effect.flip(Placement.fromJson(`{"envs":{"cpu":{"kind":"thread","count":0}}}`))
        assert.strictEqual(bad.key, "envs.cpu.count")
      })
    )

    it.effect("invalid JSON is refused with the source's name as key", () =>
      Effect.gen(function* () {
        const named = yield* Effect.flip(Placement.fromJson("{nope", "placement.json"))
        assert.strictEqual(named._tag, "PlacementError")
        assert.strictEqual(named.key, "placement.json")
        assert.include(named.reason, "not valid JSON")
        const unnamed = yield* Effect.flip(Placement.fromJson("{nope"))
        assert.strictEqual(unnamed.key, "(json)")
      })
    )
  })

  describe("fromConfig", () => {
    it.effect("reads CORPS_PLACEMENT", () =>
      Effect.gen(function* () {
        const placement = yield* Placement.fromConfig.pipe(
          provideConfig({ CORPS_PLACEMENT: `{"default":"local","workers":{"Counter":{"env":"local","replicas":2}}}` })
        )
        assert.deepStrictEqual(placement, { default: "local", workers: { Counter: { env: "local", replicas: 2 } } })
      })
    )

    it.effect("reads CORPS_PLACEMENT through ConfigProvider.layer", () =>
      Effect.gen(function* () {
        const placement = yield* Placement.fromConfig.pipe(
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ CORPS_PLACEMENT: `{"default":"local"}` })))
        )
        assert.deepStrictEqual(placement, { default: "local" })
      })
    )

    it.effect("absent, every Worker is local", () =>
      Effect.gen(function* () {
        const placement = yield* Placement.fromConfig.pipe(provideConfig({}))
        assert.deepStrictEqual(placement, {})
        const resolved = yield* Placement.resolve(placement, workers)
        assert.deepStrictEqual(
          [...resolved.values()].map((r) => r.env),
          [{ kind: "local" }, { kind: "local" }]
        )
      })
    )

    it.effect("bad JSON in CORPS_PLACEMENT names the variable", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Placement.fromConfig.pipe(provideConfig({ CORPS_PLACEMENT: "{" })))
        assert.strictEqual(error._tag, "PlacementError")
        assert.strictEqual(error.key, "CORPS_PLACEMENT")
      })
    )

    it.effect("an unknown key in CORPS_PLACEMENT is refused", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Placement.fromConfig.pipe(
            provideConfig({ CORPS_PLACEMENT: `{"workers":{"Counter":{"env":"local","replica":2}}}` })
          )
        )
        assert.strictEqual(error.key, "workers.Counter.replica")
        assert.include(error.reason, `did you mean "replicas"?`)
      })
    )

    it.effect("a bad entry in CORPS_PLACEMENT names the entry", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Placement.fromConfig.pipe(
            provideConfig({ CORPS_PLACEMENT: `{"envs":{"cpu":{"kind":"thread","count":"two"}}}` })
          )
        )
        assert.strictEqual(error.key, "envs.cpu.count")
      })
    )
  })

  describe("fromFile", () => {
    it.effect("reads a placement from a JSON file", () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped()
        const path = `${dir}/placement.json`
        yield* fs.writeFileString(path, `{"workers":{"Counter":{"env":"local","strategy":"pinned"}}}`)
        assert.deepStrictEqual(yield* Placement.fromFile(path), {
          workers: { Counter: { env: "local", strategy: "pinned" } }
        })
        yield* fs.writeFileString(path, "not json")
        const error = yield* Effect.flip(Placement.fromFile(path))
        assert.strictEqual(error.key, path)
        assert.include(error.reason, "not valid JSON")
      }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))
    )

    it.effect("an unknown key in a file is refused", () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped()
        const path = `${dir}/placement.json`
        yield* fs.writeFileString(path, `{"envs":{"cpu":{"kind":"process","cuont":2}}}`)
        const error = yield* Effect.flip(Placement.fromFile(path))
        assert.strictEqual(error.key, "envs.cpu.cuont")
        assert.include(error.reason, `did you mean "count"?`)
      }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))
    )

    it.effect("a missing file is a PlacementError keyed by its path", () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped()
        const path = `${dir}/missing.json`
        const error = yield* Effect.flip(Placement.fromFile(path))
        assert.strictEqual(error._tag, "PlacementError")
        assert.strictEqual(error.key, path)
        assert.include(error.reason, "cannot read")
      }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))
    )
  })

  describe("Corps.layer", () => {
    const gateCorps = Corps.layer([GateLive], { placement: {} })

    it.effect("a bad placement fails the layer build with its PlacementError", () =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(
          Layer.build(
            Corps.layer(members, { placement: { workers: { Counter: { env: "nowhere" } } } }).pipe(
              Layer.provide(gateCorps)
            )
          ).pipe(Effect.scoped)
        )
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Exit.findErrorOption(exit) : undefined
        assert.strictEqual(error?._tag, "Some")
        const value = error?._tag === "Some" ? error.value : undefined
        assert.strictEqual(value?._tag, "PlacementError")
        assert.strictEqual((value as PlacementError | undefined)?.key, "workers.Counter.env")
      })
    )

    it.effect("a placement naming a Worker the Corps does not have fails the layer build", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Layer.build(
            Corps.layer(members, { placement: { workers: { Nope: "local" } } }).pipe(Layer.provide(gateCorps))
          ).pipe(Effect.scoped)
        )
        assert.strictEqual(error._tag, "PlacementError")
        assert.strictEqual((error as PlacementError).key, "workers.Nope")
      })
    )

    /** The PlacementError that building `layer` fails with. */
    const buildError = (layer: Layer.Layer<any, any, any>) =>
      Effect.flip(Layer.build(layer.pipe(Layer.provide(gateCorps))).pipe(Effect.scoped)) as Effect.Effect<
        PlacementError,
        never,
        never
      >

    it.effect("a placement written in code is checked for unknown keys", () =>
      Effect.gen(function* () {
        // A value that got past the type-checker (built elsewhere, cast, or read by other means).
        const untyped: any = { workers: { Counter: { env: "local", replica: 2 } } }
        const error = yield* buildError(Corps.layer(members, { placement: Placement.make(untyped) }))
        assert.strictEqual(error._tag, "PlacementError")
        assert.strictEqual(error.key, "workers.Counter.replica")
        assert.include(error.reason, `did you mean "replicas"?`)
      })
    )

    it.effect("Placement.layer checks its placement", () =>
      Effect.gen(function* () {
        const untyped: any = { defualt: "local" }
        const fromLayer = yield* buildError(Corps.layer(members).pipe(Layer.provide(Placement.layer(untyped))))
        assert.strictEqual(fromLayer.key, "defualt")
        assert.include(fromLayer.reason, `did you mean "default"?`)
        // The service provided directly, without Placement.layer, is checked by the Corps.
        const direct = yield* buildError(
          Corps.layer(members).pipe(Layer.provide(Layer.succeed(Placement.CurrentPlacement, untyped)))
        )
        assert.strictEqual(direct.key, "defualt")
      })
    )

    it.effect("placing a Worker on the host kind without its provider names HostEnv.layer", () =>
      Effect.gen(function* () {
        const named = yield* buildError(
          Corps.layer(members, {
            placement: { envs: { far: { kind: "host", hosts: ["10.0.0.5:4000"] } }, workers: { Counter: "far" } },
            module: new URL("./fixtures/workers.ts", import.meta.url).href
          })
        )
        assert.strictEqual(named._tag, "PlacementError")
        assert.strictEqual(named.key, "envs.far")
        assert.include(named.reason, `no provider for Env kind "host"`)
        assert.include(named.reason, `HostEnv.layer from "effect-corps/host"`)
      })
    )

    it.effect("a host Env's address must be host:port, and its keys are strict", () =>
      Effect.gen(function* () {
        const badPort = yield* Effect.flip(
          Placement.decode({ envs: { far: { kind: "host", hosts: ["10.0.0.5:99999"] } } })
        )
        assert.strictEqual(badPort._tag, "PlacementError")
        assert.include(badPort.reason, "is not host:port")
        const none = yield* Effect.flip(Placement.decode({ envs: { far: { kind: "host", hosts: [] } } }))
        assert.match(none.key, /^envs\.far\.hosts/)
        const typo = yield* Effect.flip(
          Placement.decode({ envs: { far: { kind: "host", hosts: ["h:1"], heartbeatTimeoutMilis: 100 } } })
        )
        assert.include(typo.reason, `did you mean "heartbeatTimeoutMillis"?`)
      })
    )

    it.effect("a private member of a nested Corps may be placed", () =>
      Effect.gen(function* () {
        const bank = yield* Bank
        assert.strictEqual(yield* bank.deposit({ amount: 4 }), 4)
      }).pipe(
        Effect.provide(
          Corps.layer(members, { placement: { workers: { Ledger: "local" } } }).pipe(Layer.provide(gateCorps))
        )
      )
    )

    it.effect("without a placement option, CORPS_PLACEMENT is read", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Layer.build(Corps.layer(members).pipe(Layer.provide(gateCorps))).pipe(
            Effect.scoped,
            provideConfig({ CORPS_PLACEMENT: `{"workers":{"Counter":"thread"}}` })
          )
        )
        assert.strictEqual(error._tag, "PlacementError")
        assert.strictEqual((error as PlacementError).key, "workers.Counter")
        assert.include((error as PlacementError).reason, `no provider for Env kind "thread"`)
      })
    )

    it.effect("the CurrentPlacement service wins over CORPS_PLACEMENT", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Layer.build(
            Corps.layer(members).pipe(
              Layer.provide(gateCorps),
              Layer.provide(Placement.layer({ workers: { Relay: "nowhere" } }))
            )
          ).pipe(Effect.scoped, provideConfig({ CORPS_PLACEMENT: `{"workers":{"Counter":"thread"}}` }))
        )
        assert.strictEqual((error as PlacementError).key, "workers.Relay")
      })
    )
  })
})

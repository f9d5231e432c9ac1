/**
 * Thread and process Envs: lifecycle, crashes, spreading, start failures.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Stream } from "effect"
import { Corps, type Placement } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { hostsOf } from "../../src/node/routing.ts"
import { Hop, HopLive, Probe, ProbeLive, Where, WhereLive } from "../fixtures/envs.ts"
import { childPids, threadResources } from "./resources.ts"

const fixtures = new URL("../fixtures/envs.ts", import.meta.url).href

const corps = (kind: "thread" | "process", options?: { readonly module?: string; readonly count?: number }) =>
  Corps.layer([ProbeLive, WhereLive, HopLive], {
    module: options?.module ?? fixtures,
    placement: { envs: { pool: { kind, count: options?.count ?? 2 } }, default: "pool" } satisfies Placement.Placement
  }).pipe(Layer.provide(NodeEnv.layer))

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("NodeEnv", () => {
  for (const kind of ["thread", "process"] as const) {
    describe(kind, () => {
      it.live("Funcs spread over every Env; Conc keys map to a stable Env", () =>
        Effect.gen(function* () {
          const probe = yield* Probe
          const where = yield* Where
          // 64 concurrent calls must reach both Envs (least-loaded dispatch).
          const places = yield* Effect.forEach(
            Array.from({ length: 64 }, () => probe.where()),
            (e) => e,
            {
              concurrency: "unbounded"
            }
          )
          const distinct = new Set(places.map((p) => `${p.pid}/${p.thread}`))
          assert.strictEqual(distinct.size, 2)
          for (const p of places) assert.notDeepEqual(p, { pid: process.pid, thread: 0 })
          // The same key always lands in the same Env.
          const a1 = yield* where.instance("a").where()
          const a2 = yield* where.instance("a").where()
          assert.deepStrictEqual(a1, a2)
          const keys = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => `k${i}`),
            (k) => where.instance(k).where()
          )
          assert.strictEqual(new Set(keys.map((p) => `${p.pid}/${p.thread}`)).size, 2)
        }).pipe(Effect.provide(corps(kind)), Effect.scoped)
      )

      it.live("byte arrays of a `transfer` method are moved to a thread, copied to a process", () =>
        Effect.gen(function* () {
          const probe = yield* Probe
          const bytes = new Uint8Array(1024).fill(3)
          assert.strictEqual(yield* probe.sum({ bytes }), 3072)
          // Moved: the caller's array is emptied. Copied: it is intact.
          assert.strictEqual(bytes.byteLength, kind === "thread" ? 0 : 1024)
        }).pipe(Effect.provide(corps(kind)), Effect.scoped)
      )

      it.live("a Func's streams stay with the replica that opened them", () =>
        Effect.gen(function* () {
          const probe = yield* Probe
          const streams = yield* Effect.forEach(
            Array.from({ length: 8 }, (_, i) => i + 3),
            (n) => Stream.runCollect(probe.count({ n })),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(
            streams.map((s) => [...s]),
            Array.from({ length: 8 }, (_, i) => Array.from({ length: i + 3 }, (_, j) => j + 1))
          )
        }).pipe(Effect.provide(corps(kind)), Effect.scoped)
      )

      it.live("a Conc key reached from inside an Env is the same instance as from the caller", () =>
        Effect.gen(function* () {
          const where = yield* Where
          const hop = yield* Hop
          for (const key of Array.from({ length: 12 }, (_, i) => `key-${i}`)) {
            const fromCaller = yield* where.instance(key).where()
            const fromEnv = yield* hop.whereOf({ key })
            assert.deepStrictEqual(fromEnv, fromCaller, key)
          }
        }).pipe(Effect.provide(corps(kind)), Effect.scoped)
      )

      it.live("a crashed Env fails its calls in flight with CallLost and is started again", () =>
        Effect.gen(function* () {
          const probe = yield* Probe
          const hanging = yield* Effect.forkChild(probe.hang(), { startImmediately: true })
          const crash = yield* Effect.exit(probe.crash())
          assert.isTrue(Exit.isFailure(crash))
          const error = Exit.isFailure(crash) ? Exit.findErrorOption(crash) : undefined
          assert.strictEqual(error?._tag === "Some" ? error.value._tag : undefined, "CallLost")
          // Later calls are served (the surviving Env at once, the crashed one once restarted).
          const results = yield* Effect.forEach(
            Array.from({ length: 10 }, (_, i) => i),
            (n) => probe.square({ n })
          )
          assert.deepStrictEqual(results, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81])
          yield* Fiber.interrupt(hanging)
        }).pipe(Effect.provide(corps(kind)), Effect.scoped)
      )

      it.live("closing the Corps leaves no Env behind", () =>
        Effect.gen(function* () {
          const threadsBefore = threadResources()
          const places = yield* Effect.scoped(
            Effect.gen(function* () {
              const probe = yield* Probe
              return yield* Effect.forEach(
                Array.from({ length: 32 }, () => probe.where()),
                (e) => e,
                {
                  concurrency: "unbounded"
                }
              )
            }).pipe(Effect.provide(corps(kind)))
          )
          if (kind === "process") {
            const pids = [...new Set(places.map((p) => p.pid))]
            assert.strictEqual(pids.length, 2)
            for (const pid of pids) assert.isFalse(isAlive(pid), `process ${pid} is still alive`)
          } else {
            assert.strictEqual(new Set(places.map((p) => p.thread)).size, 2)
            // The test runner itself holds some: compare with before the Corps started.
            assert.strictEqual(threadResources(), threadsBefore)
          }
        })
      )

      it.live("closing the Corps while a crashed Env is being started again leaves no Env behind", () =>
        Effect.gen(function* () {
          const threadsBefore = threadResources()
          const childrenBefore = childPids()
          yield* Effect.scoped(
            Effect.gen(function* () {
              const probe = yield* Probe
              const crash = yield* Effect.exit(probe.crash())
              assert.isTrue(Exit.isFailure(crash))
              // The Corps closes now, with the crashed Env's restart pending or under way.
            }).pipe(Effect.provide(corps(kind)))
          )
          if (kind === "process") assert.deepStrictEqual(childPids(), childrenBefore)
          else assert.strictEqual(threadResources(), threadsBefore)
        })
      )

      it.live("a module that fails to load is an EnvStartError at Corps start, naming the module", () =>
        Effect.gen(function* () {
          const broken = new URL("../fixtures/brokenModule.ts", import.meta.url).href
          const failed = yield* Effect.flip(Layer.build(corps(kind, { module: broken, count: 1 })).pipe(Effect.scoped))
          assert.strictEqual(failed._tag, "EnvStartError")
          assert.include(failed.message, "brokenModule.ts")
          assert.include(failed.message, "refuses to load")
          const missing = new URL("../fixtures/doesNotExist.ts", import.meta.url).href
          const absent = yield* Effect.flip(Layer.build(corps(kind, { module: missing, count: 1 })).pipe(Effect.scoped))
          assert.strictEqual(absent._tag, "EnvStartError")
          assert.include(absent.message, "doesNotExist.ts")
        })
      )
    })
  }

  it.live("strategies: pinned and replicas narrow the Envs that serve a Worker; too many replicas is an error", () =>
    Effect.gen(function* () {
      const placed = (probe: Placement.Placement["workers"]) =>
        Corps.layer([ProbeLive, WhereLive], {
          module: fixtures,
          placement: { envs: { pool: { kind: "thread", count: 2 } }, default: "pool", workers: probe }
        }).pipe(Layer.provide(NodeEnv.layer))
      const spread = Effect.gen(function* () {
        const probe = yield* Probe
        const places = yield* Effect.forEach(
          Array.from({ length: 64 }, () => probe.where()),
          (e) => e,
          {
            concurrency: "unbounded"
          }
        )
        return new Set(places.map((p) => p.thread)).size
      })
      assert.strictEqual(yield* spread.pipe(Effect.provide(placed({ Probe: { env: "pool" } })), Effect.scoped), 2)
      assert.strictEqual(
        yield* spread.pipe(Effect.provide(placed({ Probe: { env: "pool", strategy: "pinned" } })), Effect.scoped),
        1
      )
      assert.strictEqual(
        yield* spread.pipe(Effect.provide(placed({ Probe: { env: "pool", replicas: 1 } })), Effect.scoped),
        1
      )
      const tooMany = yield* Effect.flip(
        Layer.build(placed({ Probe: { env: "pool", replicas: 3 } })).pipe(Effect.scoped)
      )
      assert.strictEqual(tooMany._tag, "EnvStartError")
      assert.include(tooMany.message, "3 replicas")
    })
  )

  it("hostsOf spreads replicas evenly over an Env's count", () => {
    const at = (strategy: "auto" | "per-env" | "pinned", replicas?: number) =>
      hostsOf({ envName: "pool", env: { kind: "thread" }, strategy, replicas }, 4)
    assert.deepStrictEqual(at("auto"), [0, 1, 2, 3])
    assert.deepStrictEqual(at("auto", 2), [0, 2])
    assert.deepStrictEqual(at("per-env", 1), [0, 1, 2, 3])
    assert.deepStrictEqual(at("pinned"), [0])
  })

  it.live("placing a Worker in a thread without NodeEnv.layer is a PlacementError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(Corps.layer([ProbeLive], { module: fixtures, placement: { workers: { Probe: "thread" } } })).pipe(
          Effect.scoped
        )
      )
      assert.strictEqual(error._tag, "PlacementError")
      assert.include(error.message, "NodeEnv.layer")
    })
  )

  it.live("placing a Worker in a thread without the module is a PlacementError naming the option", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(
          Corps.layer([ProbeLive], { placement: { workers: { Probe: "thread" } } }).pipe(Layer.provide(NodeEnv.layer))
        ).pipe(Effect.scoped)
      )
      assert.strictEqual(error._tag, "PlacementError")
      assert.include(error.message, "import.meta.url")
    })
  )
})

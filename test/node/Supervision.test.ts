/**
 * Supervision of thread and process Envs, with real threads and processes:
 * hung and out-of-memory Envs are replaced, an Env killed again and again
 * comes back until its policy's limit and then its outcome reaches callers
 * and the event stream, a warm spare takes its slot's Conc keys over.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, PubSub, type Scope } from "effect"
import { Corps, type CorpsEvent, type Placement } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { Hop, HopLive, Probe, ProbeLive, Where, WhereLive } from "../fixtures/envs.ts"
import { Healthy, HealthyLive, Sick, SickLive } from "../fixtures/health.ts"
import { childPids, threadResources } from "./resources.ts"

const health = new URL("../fixtures/health.ts", import.meta.url).href
const envs = new URL("../fixtures/envs.ts", import.meta.url).href

const sickCorps = (placement: Placement.Placement) =>
  Corps.layer([SickLive, HealthyLive], { module: health, placement }).pipe(Layer.provide(NodeEnv.layer))

/** The Corps' events from now on, and a way to wait for the next one that matches. */
const watchEvents = Effect.gen(function* () {
  const hub = yield* Corps.Events
  const subscription = yield* PubSub.subscribe(hub.pubsub)
  const seen: Array<CorpsEvent.CorpsEvent> = []
  const next = <T extends CorpsEvent.CorpsEvent["_tag"]>(
    tag: T
  ): Effect.Effect<Extract<CorpsEvent.CorpsEvent, { _tag: T }>> =>
    Effect.gen(function* () {
      for (;;) {
        const event = yield* PubSub.take(subscription)
        seen.push(event)
        if (event._tag === tag) return event as Extract<CorpsEvent.CorpsEvent, { _tag: T }>
      }
    })
  return { next, seen }
}) satisfies Effect.Effect<unknown, never, Corps.Events | Scope.Scope>

const failureTag = (exit: Exit.Exit<unknown, unknown>): string | undefined => {
  const error = Exit.isFailure(exit) ? Exit.findErrorOption(exit) : undefined
  return error?._tag === "Some" ? (error.value as { _tag: string })._tag : undefined
}

describe("Supervision of Envs", () => {
  for (const kind of ["thread", "process"] as const) {
    describe(kind, () => {
      it.live("an Env whose event loop is blocked past hangTimeoutMillis is replaced (reason hang)", () =>
        Effect.gen(function* () {
          const events = yield* watchEvents
          const sick = yield* Sick
          const before = yield* sick.where()
          const blocked = yield* Effect.exit(sick.block({ millis: 20_000 }))
          assert.strictEqual(failureTag(blocked), "CallLost")
          const crashed = yield* events.next("EnvCrashed")
          assert.strictEqual(crashed.reason, "hang")
          assert.strictEqual(crashed.env, "pool")
          yield* events.next("EnvStarted")
          assert.strictEqual(yield* sick.square({ n: 7 }), 49)
          assert.notDeepEqual(yield* sick.where(), before)
        }).pipe(
          Effect.provide(sickCorps({ envs: { pool: { kind, count: 1, hangTimeoutMillis: 300 } }, default: "pool" })),
          Effect.scoped
        )
      )

      it.live("an Env that runs out of memory under its limit is replaced (reason memory)", () =>
        Effect.gen(function* () {
          const events = yield* watchEvents
          const sick = yield* Sick
          const hogged = yield* Effect.exit(sick.hog())
          assert.strictEqual(failureTag(hogged), "CallLost")
          const crashed = yield* events.next("EnvCrashed")
          assert.strictEqual(crashed.reason, "memory", crashed.detail)
          yield* events.next("EnvStarted")
          assert.strictEqual(yield* sick.square({ n: 3 }), 9)
        }).pipe(
          Effect.provide(
            sickCorps({
              envs: {
                pool:
                  kind === "thread"
                    ? { kind, count: 1, resourceLimits: { maxOldGenerationSizeMb: 32 } }
                    : { kind, count: 1, maxOldSpaceSizeMb: 32 }
              },
              default: "pool"
            })
          ),
          Effect.scoped
        )
      )
    })
  }

  it.live("killed 10 times, a process Env comes back until its limit, then its Workers are stopped", () =>
    Effect.gen(function* () {
      const childrenBefore = childPids()
      const seen = yield* Effect.scoped(
        Effect.gen(function* () {
          const events = yield* watchEvents
          const sick = yield* Sick
          for (let kill = 1; kill <= 10; kill++) {
            const { pid } = yield* sick.where()
            process.kill(pid, "SIGKILL")
            if (kill < 10) {
              const started = yield* events.next("EnvStarted")
              assert.strictEqual(started.attempt, kill)
            }
          }
          const exhausted = yield* events.next("SupervisionExhausted")
          assert.strictEqual(exhausted.outcome, "stop")
          assert.strictEqual(exhausted.restarts, 10)
          assert.isUndefined(exhausted.worker)
          // Calls now fail at once with the typed error, never hang.
          const stopped = yield* Effect.flip(sick.square({ n: 2 }))
          assert.strictEqual(stopped._tag, "WorkerStopped")
          if (stopped._tag === "WorkerStopped") {
            assert.strictEqual(stopped.worker, "Sick")
            assert.strictEqual(stopped.env, "pool")
            assert.include(stopped.reason, "more than 9 restarts")
          }
          const other = yield* Effect.flip((yield* Healthy).where())
          assert.strictEqual(other._tag, "WorkerStopped")
          return events.seen
        }).pipe(
          Effect.provide(
            sickCorps({
              envs: {
                pool: {
                  kind: "process",
                  count: 1,
                  supervision: {
                    maxRestarts: 9,
                    withinMillis: 60_000,
                    backoff: { baseMillis: 10, capMillis: 80, jitter: 0 },
                    outcome: "stop"
                  }
                }
              },
              default: "pool"
            })
          )
        )
      )
      const crashes = seen.filter((e) => e._tag === "EnvCrashed")
      assert.strictEqual(crashes.length, 10)
      for (const crash of crashes) assert.strictEqual(crash.reason, "crashed")
      assert.deepStrictEqual(
        seen.filter((e) => e._tag === "EnvRestarting").map((e) => (e._tag === "EnvRestarting" ? e.delayMillis : -1)),
        [0, 10, 20, 40, 80, 80, 80, 80, 80]
      )
      assert.deepStrictEqual(childPids(), childrenBefore)
    })
  )

  it.live("escalate: the Corps fails, and calls to every Env of it fail at once with CorpsFailed", () =>
    Effect.gen(function* () {
      const threadsBefore = threadResources()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const events = yield* watchEvents
          const sick = yield* Sick
          const healthy = yield* Healthy
          assert.strictEqual(failureTag(yield* Effect.exit(sick.exit())), "CallLost")
          yield* events.next("EnvStarted")
          assert.strictEqual(failureTag(yield* Effect.exit(sick.exit())), "CallLost")
          const exhausted = yield* events.next("SupervisionExhausted")
          assert.strictEqual(exhausted.outcome, "escalate")
          assert.strictEqual(exhausted.env, "a")
          const failed = yield* Effect.flip(sick.square({ n: 1 }))
          assert.strictEqual(failed._tag, "CorpsFailed")
          // The other Env of the Corps, healthy until now, fails as well.
          const other = yield* Effect.flip(healthy.where())
          assert.strictEqual(other._tag, "CorpsFailed")
          if (other._tag === "CorpsFailed") assert.strictEqual(other.env, "a")
        }).pipe(
          Effect.provide(
            sickCorps({
              envs: {
                a: { kind: "thread", count: 1, supervision: { maxRestarts: 1, outcome: "escalate" } },
                b: { kind: "thread", count: 1 }
              },
              workers: { Sick: "a", Healthy: "b" }
            })
          )
        )
      )
      assert.strictEqual(threadResources(), threadsBefore)
    })
  )

  describe("escalation up a two-level Corps tree", () => {
    /** Sick in a nested Corps that escalates at its first crash; Healthy in the Corps around it. */
    const tree = (outer: "escalate" | "stop") =>
      Corps.layer([SickLive], {
        module: health,
        name: "inner",
        placement: {
          envs: { a: { kind: "thread", count: 1, supervision: { maxRestarts: 0, outcome: "escalate" } } },
          workers: { Sick: "a" }
        }
      }).pipe(
        Layer.provideMerge(
          Corps.layer([HealthyLive], {
            module: health,
            name: "outer",
            placement: { envs: { b: { kind: "thread", count: 1 } }, workers: { Healthy: "b" } },
            supervision: { outcome: outer }
          })
        ),
        Layer.provide(NodeEnv.layer)
      )

    const crashInner = Effect.gen(function* () {
      const events = yield* watchEvents
      const sick = yield* Sick
      assert.strictEqual(failureTag(yield* Effect.exit(sick.exit())), "CallLost")
      const exhausted = yield* events.next("SupervisionExhausted")
      assert.strictEqual(exhausted.outcome, "escalate")
      const failed = yield* Effect.flip(sick.square({ n: 1 }))
      assert.strictEqual(failed._tag, "CorpsFailed")
      return failed
    })

    it.live("an enclosing Corps whose outcome is escalate fails too, naming the nested failure", () =>
      Effect.gen(function* () {
        const inner = yield* crashInner
        const outer = yield* Effect.flip((yield* Healthy).where())
        assert.strictEqual(outer._tag, "CorpsFailed")
        if (outer._tag === "CorpsFailed" && inner._tag === "CorpsFailed") {
          assert.notStrictEqual(outer.corps, inner.corps)
          assert.strictEqual(outer.env, "a")
          assert.include(outer.reason, `nested Corps ${inner.corps} failed`)
        }
      }).pipe(Effect.provide(tree("escalate")), Effect.scoped)
    )

    it.live("an enclosing Corps whose outcome is stop keeps serving", () =>
      Effect.gen(function* () {
        yield* crashInner
        const place = yield* (yield* Healthy).where()
        assert.notStrictEqual(place.thread, 0)
      }).pipe(Effect.provide(tree("stop")), Effect.scoped)
    )
  })

  it.live("a Worker's own policy stops that Worker while its Env serves the others", () =>
    Effect.gen(function* () {
      const events = yield* watchEvents
      const sick = yield* Sick
      const healthy = yield* Healthy
      assert.strictEqual(failureTag(yield* Effect.exit(sick.exit())), "CallLost")
      const exhausted = yield* events.next("SupervisionExhausted")
      assert.strictEqual(exhausted.worker, "Sick")
      assert.strictEqual(exhausted.outcome, "stop")
      yield* events.next("EnvStarted")
      const stopped = yield* Effect.flip(sick.square({ n: 1 }))
      assert.strictEqual(stopped._tag, "WorkerStopped")
      const place = yield* healthy.where()
      assert.notStrictEqual(place.thread, 0)
    }).pipe(
      Effect.provide(
        sickCorps({
          envs: { pool: { kind: "thread", count: 1 } },
          default: "pool",
          workers: { Sick: { env: "pool", supervision: { maxRestarts: 0, outcome: "stop" } } }
        })
      ),
      Effect.scoped
    )
  )

  it.live("a spare that takes over learns its slot: Conc keys stay where the caller routes them", () =>
    Effect.gen(function* () {
      const events = yield* watchEvents
      const probe = yield* Probe
      const where = yield* Where
      const hop = yield* Hop
      const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`)
      const before = yield* Effect.forEach(keys, (key) => where.instance(key).where())
      for (let crash = 0; crash < 3; crash++) {
        const lost = yield* Effect.flip(probe.crash())
        assert.strictEqual(lost._tag, "CallLost")
        // A promoted spare names the slot it serves, not the spare it was.
        if (lost._tag === "CallLost") assert.match(lost.env, /^pool#[01]$/)
        yield* events.next("EnvStarted")
      }
      const after = yield* Effect.forEach(keys, (key) => where.instance(key).where())
      // At least one Env was replaced: some keys now live in another thread.
      assert.isTrue(after.some((place, i) => place.thread !== before[i]!.thread))
      for (const [i, key] of keys.entries()) {
        assert.deepStrictEqual(yield* hop.whereOf({ key }), after[i], key)
      }
    }).pipe(
      Effect.provide(
        Corps.layer([ProbeLive, WhereLive, HopLive], {
          module: envs,
          placement: { envs: { pool: { kind: "thread", count: 2 } }, default: "pool" }
        }).pipe(Layer.provide(NodeEnv.layer))
      ),
      Effect.scoped
    )
  )
})

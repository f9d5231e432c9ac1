/**
 * Autoscaling with real threads and processes: an Env grows under load and
 * shrinks back when idle (every step waited for on the event stream, never
 * on a sleep); one instance per key while keys are created, from the caller
 * and from inside Envs, during resizing; placement strategies keep their
 * meaning; a `replicas` count the Env could shrink under is refused.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, PubSub, Redacted, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import { inject, vi } from "vitest"
import { Corps, type CorpsEvent, type Placement, type Worker } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"

// Before the fixture is imported (here and in the Envs, which inherit the environment): one table per run.
const table = vi.hoisted(() => {
  const name = `corps_scaling_t${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`
  process.env.CORPS_TEST_SCALING_TABLE = name
  return name
})

import {
  Brief,
  BriefLive,
  Bump,
  BumpLive,
  databaseUrl,
  Kept,
  KeptLive,
  Pinned,
  PinnedLive,
  Spin,
  SpinLive,
  Tick,
  TickLive
} from "../fixtures/scaling.ts"

const postgres: boolean = inject("postgres")

const fixtures = new URL("../fixtures/scaling.ts", import.meta.url).href

/** A policy fast enough for tests: decisions every 20 ms, growth after 40 ms of pressure, shrinking after 300 ms. */
const fast = { sampleMillis: 20, upAfterMillis: 40, downAfterMillis: 300, inFlightPerEnv: 2 }

const placementOf = (
  kind: "thread" | "process",
  max: number,
  workers: Placement.Placement["workers"] = {},
  scaling: Partial<typeof fast> = {}
) =>
  ({
    envs: { pool: { kind, count: { min: 1, max }, scaling: { ...fast, ...scaling } } },
    default: "pool",
    workers
  }) satisfies Placement.Placement

/** The Corps' events from now on, and a way to wait for the next one that matches. */
const watchEvents = Effect.gen(function* () {
  const hub = yield* Corps.Events
  const subscription = yield* PubSub.subscribe(hub.pubsub)
  return <T extends CorpsEvent.CorpsEvent["_tag"]>(
    tag: T,
    matches: (event: Extract<CorpsEvent.CorpsEvent, { _tag: T }>) => boolean = () => true
  ): Effect.Effect<Extract<CorpsEvent.CorpsEvent, { _tag: T }>> =>
    Effect.gen(function* () {
      for (;;) {
        const event = yield* PubSub.take(subscription)
        if (event._tag === tag && matches(event as Extract<CorpsEvent.CorpsEvent, { _tag: T }>)) {
          return event as Extract<CorpsEvent.CorpsEvent, { _tag: T }>
        }
      }
    })
}) satisfies Effect.Effect<unknown, never, Corps.Events | Scope.Scope>

const placeOf = (where: { readonly pid: number; readonly thread: number }) => `${where.pid}/${where.thread}`

/**
 * Makes keys `<prefix>0`, `<prefix>1`… one at a time until one is placed on
 * `slot` (new keys go to the least busy Env, which under load is not always
 * the new one), at most `limit`; answers the keys placed there.
 */
const keysPlacedOn = <E, R>(
  prefix: string,
  slot: string,
  place: (key: string) => Effect.Effect<{ readonly pid: number; readonly thread: number }, E, R>,
  limit = 500
) =>
  Effect.gen(function* () {
    for (let i = 0; i < limit; i++) {
      const key = `${prefix}${i}`
      if (placeOf(yield* place(key)) === slot) return [key]
    }
    return []
  })

/** Keeps `fibers` callers spinning `millis` at a time until interrupted: a load that needs more than one Env. */
const burn = (spin: Worker.Handle<typeof Spin.methods>, fibers: number, millis = 5) =>
  Effect.forkChild(
    Effect.forEach(
      Array.from({ length: fibers }, (_, i) => i),
      () => Effect.forever(spin.spin({ millis })),
      { concurrency: "unbounded", discard: true }
    )
  )

/** The distinct places concurrent `where` calls reach, sampled until `count` are seen (or 200 rounds). */
const placesReached = (where: () => Effect.Effect<{ pid: number; thread: number }, unknown>, count: number) =>
  Effect.gen(function* () {
    const places = new Set<string>()
    for (let round = 0; round < 200 && places.size < count; round++) {
      const seen = yield* Effect.forEach(Array.from({ length: 8 }), where, { concurrency: "unbounded" })
      for (const place of seen) places.add(placeOf(place))
    }
    return places
  })

describe("autoscaling", () => {
  for (const kind of ["thread", "process"] as const) {
    it.live(
      `${kind}: grows under load, spreads Funcs over the new Env at once, shrinks back to min when idle`,
      () =>
        Effect.gen(function* () {
          const next = yield* watchEvents
          const spin = yield* Spin
          const load = yield* burn(spin, 8)
          const up = yield* next("EnvScaled", (e) => e.direction === "up")
          assert.deepStrictEqual([up.env, up.from, up.to], ["pool", 1, 2])
          assert.strictEqual(up.samples.length, 1)
          assert.isAbove(up.samples[0]!.inFlight, 0)
          yield* next("EnvStarted", (e) => e.index === 1)
          // Funcs reach the new Env with no other step.
          const places = yield* placesReached(() => spin.spin({ millis: 1 }), 2)
          assert.strictEqual(places.size, 2)
          yield* Fiber.interrupt(load)
          const down = yield* next("EnvScaled", (e) => e.direction === "down")
          assert.deepStrictEqual([down.from, down.to], [2, 1])
          const removed = yield* next("EnvRemoved")
          assert.deepStrictEqual([removed.index, removed.reason], [1, "drained"])
          // Only the first Env is left, and it serves (one call at a time: no load that could grow it again).
          const after = new Set<string>()
          for (let i = 0; i < 20; i++) after.add(placeOf(yield* spin.where()))
          assert.strictEqual(after.size, 1)
        }).pipe(
          Effect.scoped,
          Effect.provide(
            Corps.layer([SpinLive], { module: fixtures, placement: placementOf(kind, 2) }).pipe(
              Layer.provide(NodeEnv.layer)
            )
          )
        ),
      // Process starts are slow on a loaded machine (52 s seen with five other test runs beside it).
      120_000
    )
  }

  it.live(
    "one instance per key: keys created from the caller and from inside Envs while the Env grows, drains and grows again end exact",
    () =>
      Effect.gen(function* () {
        const next = yield* watchEvents
        const spin = yield* Spin
        const tick = yield* Tick
        const bump = yield* Bump
        const expected = new Map<string, number>()
        let round = 0
        /** One round: 10 new keys, then one increment of every key so far, half through the caller, half through an Env. */
        const increments = Effect.suspend(() => {
          for (let k = 0; k < 10; k++) expected.set(`k${expected.size}`, 0)
          const keys = [...expected.keys()]
          const r = round++
          return Effect.forEach(
            keys,
            (key, i) =>
              Effect.tap((i + r) % 2 === 0 ? tick.instance(key).add({ by: 1 }) : bump.bump({ key, by: 1 }), () =>
                Effect.sync(() => expected.set(key, expected.get(key)! + 1))
              ),
            { concurrency: 4, discard: true }
          )
        })
        /** Rounds until `event` is seen, and `after` more rounds. */
        const roundsUntil = <A>(event: Effect.Effect<A>, after: number) =>
          Effect.gen(function* () {
            const seen = yield* Effect.forkChild(event)
            while (seen.pollUnsafe() === undefined) yield* increments
            for (let i = 0; i < after; i++) yield* increments
            return yield* Fiber.join(seen)
          })
        const load = yield* burn(spin, 8)
        yield* roundsUntil(
          next("EnvScaled", (e) => e.direction === "up" && e.to === 3),
          3
        )
        yield* Fiber.interrupt(load)
        // Slots holding live instances (no persistence, no passivateAfter) drain but stay.
        yield* roundsUntil(
          next("EnvScaled", (e) => e.direction === "down"),
          3
        )
        const again = yield* burn(spin, 8)
        yield* roundsUntil(
          next("EnvScaled", (e) => e.direction === "up"),
          3
        )
        yield* Fiber.interrupt(again)
        assert.isAtLeast(expected.size, 100)
        const counts = yield* Effect.forEach([...expected.keys()], (key) => tick.instance(key).get(), {
          concurrency: 32
        })
        assert.deepStrictEqual(counts, [...expected.values()])
        // Keys spread over the Envs, each key on one.
        const places = new Set<string>()
        for (const key of expected.keys()) places.add(placeOf(yield* tick.instance(key).where()))
        assert.isAtLeast(places.size, 2)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Corps.layer([SpinLive, TickLive, BumpLive], { module: fixtures, placement: placementOf("thread", 3) }).pipe(
            Layer.provide(NodeEnv.layer)
          )
        )
      ),
    90_000
  )

  it.live(
    "pinned stays on the first Env, per-env follows the Envs in service",
    () =>
      Effect.gen(function* () {
        const next = yield* watchEvents
        const spin = yield* Spin
        const pinned = yield* Pinned
        const before = placeOf(yield* pinned.where())
        const load = yield* burn(spin, 8)
        yield* next("EnvScaled", (e) => e.direction === "up")
        yield* next("EnvStarted", (e) => e.index === 1)
        assert.strictEqual((yield* placesReached(() => spin.spin({ millis: 1 }), 2)).size, 2)
        const pinnedPlaces = yield* placesReached(() => pinned.where(), 2)
        assert.deepStrictEqual([...pinnedPlaces], [before])
        yield* Fiber.interrupt(load)
        yield* next("EnvRemoved")
        assert.strictEqual(placeOf(yield* pinned.where()), before)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Corps.layer([SpinLive, PinnedLive], {
            module: fixtures,
            placement: placementOf("thread", 2, {
              Spin: { env: "pool", strategy: "per-env" },
              Pinned: { env: "pool", strategy: "pinned" }
            })
          }).pipe(Layer.provide(NodeEnv.layer))
        )
      ),
    60_000
  )

  it.live("replicas above the Env's min is an EnvStartError naming both", () =>
    Effect.gen(function* () {
      // The Corps fails to build: nothing of it is left to use.
      const exit = yield* Effect.exit(
        Effect.scoped(
          Layer.build(
            Corps.layer([SpinLive], {
              module: fixtures,
              placement: placementOf("thread", 4, { Spin: { env: "pool", replicas: 2 } })
            }).pipe(Layer.provide(NodeEnv.layer))
          )
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.findErrorOption(exit as Exit.Exit<unknown, unknown>)
      assert.isTrue(error._tag === "Some")
      const failure = (error as { value: { _tag: string; reason: string } }).value
      assert.strictEqual(failure._tag, "EnvStartError")
      assert.match(failure.reason, /Spin asks for 2 replicas; Env "pool" may shrink to 1/)
    })
  )
})

/** Up to 2 threads, grown by a burn; answers the new thread's place once Funcs reach it, with the burn still running. */
const grownToTwo = (next: Effect.Success<typeof watchEvents>, spin: Worker.Handle<typeof Spin.methods>) =>
  Effect.gen(function* () {
    const first = placeOf(yield* spin.where())
    const load = yield* burn(spin, 8)
    yield* next("EnvScaled", (e) => e.direction === "up")
    yield* next("EnvStarted", (e) => e.index === 1)
    const places = yield* placesReached(() => spin.spin({ millis: 1 }), 2)
    const second = [...places].find((place) => place !== first)!
    return { load, first, second }
  })

describe("draining and supervision of added Envs", () => {
  it.live(
    "instances that passivate themselves (passivateAfter) let their Env go; their keys start afresh on the Env left",
    () =>
      Effect.gen(function* () {
        const next = yield* watchEvents
        const spin = yield* Spin
        const brief = yield* Brief
        const { load, first, second } = yield* grownToTwo(next, spin)
        // New keys go to the least-loaded Env, then the one with fewer keys: some land on the new one.
        const onSecond = yield* keysPlacedOn("b", second, (key) =>
          Effect.andThen(brief.instance(key).add({ by: 5 }), brief.instance(key).where())
        )
        assert.isAbove(onSecond.length, 0)
        yield* Fiber.interrupt(load)
        const removed = yield* next("EnvRemoved")
        assert.deepStrictEqual([removed.index, removed.reason], [1, "drained"])
        // Passivated (state not persisted): rebuilt from scratch, on the Env left.
        for (const key of onSecond) {
          assert.strictEqual(yield* brief.instance(key).add({ by: 1 }), 1)
          assert.strictEqual(placeOf(yield* brief.instance(key).where()), first)
        }
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Corps.layer([SpinLive, BriefLive], { module: fixtures, placement: placementOf("thread", 2) }).pipe(
            Layer.provide(NodeEnv.layer)
          )
        )
      ),
    60_000
  )

  it.live(
    "an Env added by scaling that crashes while in service is restarted under supervision, in its slot",
    () =>
      Effect.gen(function* () {
        const next = yield* watchEvents
        const spin = yield* Spin
        const tick = yield* Tick
        const { load, second } = yield* grownToTwo(next, spin)
        const onSecond = yield* keysPlacedOn("s", second, (key) => tick.instance(key).where())
        assert.isAbove(onSecond.length, 0)
        // Still under load, so still in service: a crash is a crash, not a removal.
        yield* Effect.exit(tick.instance(onSecond[0]!).crash())
        const crashed = yield* next("EnvCrashed")
        assert.strictEqual(crashed.index, 1)
        const restarted = yield* next("EnvStarted", (e) => e.index === 1)
        assert.strictEqual(restarted.attempt, 1)
        // The key is still placed there, on the new thread.
        const again = placeOf(yield* tick.instance(onSecond[0]!).where())
        assert.notStrictEqual(again, second)
        yield* Fiber.interrupt(load)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Corps.layer([SpinLive, TickLive], { module: fixtures, placement: placementOf("thread", 2) }).pipe(
            Layer.provide(NodeEnv.layer)
          )
        )
      ),
    60_000
  )

  it.live(
    "a draining Env that crashes is removed, not restarted; its keys start afresh on the Env left",
    () =>
      Effect.gen(function* () {
        const next = yield* watchEvents
        const spin = yield* Spin
        const tick = yield* Tick
        const { load, first, second } = yield* grownToTwo(next, spin)
        const onSecond = yield* keysPlacedOn("c", second, (key) =>
          Effect.andThen(tick.instance(key).add({ by: 5 }), tick.instance(key).where())
        )
        assert.isAbove(onSecond.length, 0)
        yield* Fiber.interrupt(load)
        // Its live instances (no persistence, no passivateAfter) keep it draining.
        yield* next("EnvScaled", (e) => e.direction === "down")
        const crashed = yield* Effect.exit(tick.instance(onSecond[0]!).crash())
        assert.isTrue(Exit.isFailure(crashed))
        const removed = yield* next("EnvRemoved")
        assert.strictEqual(removed.index, 1)
        assert.match(removed.reason, /^lost while draining/)
        // Not restarted: every key is served by the Env left, the lost ones from scratch.
        for (const key of onSecond) {
          assert.strictEqual(yield* tick.instance(key).add({ by: 1 }), 1)
          assert.strictEqual(placeOf(yield* tick.instance(key).where()), first)
        }
        assert.strictEqual(placeOf(yield* spin.where()), first)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Corps.layer([SpinLive, TickLive], { module: fixtures, placement: placementOf("thread", 2) }).pipe(
            Layer.provide(NodeEnv.layer)
          )
        )
      ),
    60_000
  )

  const Sql = PgClient.layer({ url: Redacted.make(databaseUrl), onnotice: () => {} } as PgClient.PgPoolConfig)
  const dropTable = Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`DROP TABLE IF EXISTS ${sql(table)}`
  }).pipe(Effect.provide(Sql), Effect.orDie)

  it.live.runIf(postgres)(
    "persisted instances of a drained Env are passivated and resume their state on the Env left",
    () =>
      Effect.gen(function* () {
        yield* Effect.addFinalizer(() => dropTable)
        yield* Effect.gen(function* () {
          const next = yield* watchEvents
          const spin = yield* Spin
          const kept = yield* Kept
          const { load, first, second } = yield* grownToTwo(next, spin)
          // Stopped before the persisted keys are made: a thread kept busy by synchronous CPU-bound calls
          // answers its PostgreSQL socket too late (see docs/scaling.md). The longer cooldown leaves time for them.
          yield* Fiber.interrupt(load)
          const keys = Array.from({ length: 20 }, (_, i) => `p${i}`)
          const placed = yield* Effect.forEach(keys, (key, i) =>
            Effect.gen(function* () {
              yield* kept.instance(key).add({ by: i + 1 })
              yield* kept.instance(key).add({ by: i + 1 })
              return placeOf(yield* kept.instance(key).where())
            })
          )
          const onSecond = keys.filter((_, i) => placed[i] === second)
          assert.isAbove(onSecond.length, 0)
          // A subscription of its own: two takers of one would each miss what the other took.
          const nextPassivated = yield* watchEvents
          const passivated = yield* Effect.forkChild(
            Effect.forEach(onSecond, () => nextPassivated("InstancePassivated", (e) => e.worker === "Kept"))
          )
          const removed = yield* next("EnvRemoved")
          assert.deepStrictEqual([removed.index, removed.reason], [1, "drained"])
          const events = yield* Fiber.join(passivated)
          assert.sameMembers(
            events.map((e) => e.key),
            onSecond
          )
          // Every key, wherever it lived, has its whole state, now on the Env left.
          for (const [i, key] of keys.entries()) {
            assert.strictEqual(yield* kept.instance(key).get(), 2 * (i + 1))
            assert.strictEqual(placeOf(yield* kept.instance(key).where()), first)
          }
        }).pipe(
          Effect.scoped,
          Effect.provide(
            Corps.layer([SpinLive, KeptLive], {
              module: fixtures,
              placement: placementOf("thread", 2, {}, { downAfterMillis: 3000 })
            }).pipe(Layer.provide(NodeEnv.layer))
          )
        )
      }).pipe(Effect.scoped),
    60_000
  )
})

/**
 * `onDefect` and persisted state: a restarted instance runs its finalizers and
 * starts fresh (or from its last committed state), in the caller's runtime, in
 * threads and in processes; a process Env killed with SIGKILL comes back with
 * the state PostgreSQL holds.
 */

import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, PubSub, Redacted, Schema } from "effect"
import { KeyValueStore } from "effect/persistence"
import { SqlClient } from "effect/sql"
import { inject, vi } from "vitest"
import { type InstanceStartFailed, StateError, WorkerDefect } from "../src/CorpsError.ts"
import { Corps, type Placement, State, Worker } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"

// Before the fixture is imported (here and in the Envs, which inherit the environment): one table per run.
const table = vi.hoisted(() => {
  const name = `corps_state_t${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`
  process.env.CORPS_TEST_STATE_TABLE = name
  return name
})

import { databaseUrl, Saved, SavedPostgres, Tally, TallyLive } from "./fixtures/stateWorkers.ts"

const postgres: boolean = inject("postgres")
const fixtures = new URL("./fixtures/stateWorkers.ts", import.meta.url).href

/** The defect inside a failed call. */
const defectOf = (exit: Exit.Exit<unknown, unknown>): unknown => {
  assert.isTrue(Exit.isFailure(exit))
  const error = Cause.findErrorOption((exit as Exit.Failure<unknown, unknown>).cause)
  assert.isTrue(error._tag === "Some" && error.value instanceof WorkerDefect, String(exit))
  return (error as any).value.defect
}

// ---------------------------------------------------------------------------
// onDefect, in the caller's runtime
// ---------------------------------------------------------------------------

class Box extends Worker.Service<Box>()("Box", {
  put: { payload: { item: Schema.Number }, success: Schema.Array(Schema.Number) },
  /** Waits for the gate, then dies. */
  breakAfterGate: {},
  /** Fails with a WorkerDefect as a typed error (one a handler got from elsewhere): no restart. */
  relayDefect: { error: WorkerDefect },
  peek: { success: Schema.Array(Schema.Number) }
}) {}

const makeBox = (onDefect: "resume" | "restart") => {
  const log = { builds: 0, finalized: 0 }
  const gate = Deferred.makeUnsafe<void>()
  const entered = Deferred.makeUnsafe<void>()
  const impl = Box.conc(
    Effect.gen(function* () {
      log.builds++
      const items: Array<number> = []
      yield* Effect.addFinalizer(() => Effect.sync(() => log.finalized++))
      return {
        put: ({ item }) => {
          items.push(item)
          return [...items]
        },
        breakAfterGate: () =>
          Effect.andThen(
            Effect.andThen(Deferred.succeed(entered, undefined), Deferred.await(gate)),
            Effect.die(new Error("broken"))
          ),
        relayDefect: () => Effect.fail(WorkerDefect.fromDefect("Other", "m", "elsewhere")),
        peek: () => [...items]
      }
    }),
    { onDefect }
  )
  return { impl, log, gate, entered }
}

describe("onDefect", () => {
  it.live("restart: finalizers run, queued calls meet a fresh instance in order, InstanceRestarted is reported", () => {
    const box = makeBox("restart")
    return Effect.gen(function* () {
      const hub = yield* Corps.Events
      const events = yield* PubSub.subscribe(hub.pubsub)
      const handle = yield* Box
      assert.deepStrictEqual(yield* handle.put({ item: 1 }), [1])
      const broken = yield* Effect.forkChild(Effect.exit(handle.breakAfterGate()))
      yield* Deferred.await(box.entered)
      // Queued behind the call that will die.
      const queued = yield* Effect.forkChild(
        Effect.all([handle.put({ item: 2 }), handle.put({ item: 3 })], { concurrency: "unbounded" })
      )
      yield* Deferred.succeed(box.gate, undefined)
      const exit = yield* Fiber.join(broken)
      assert.strictEqual((defectOf(exit) as Error).message, "broken")
      assert.strictEqual(box.log.finalized, 1)
      const [two, three] = yield* Fiber.join(queued)
      assert.deepStrictEqual(two, [2])
      assert.deepStrictEqual(three, [2, 3])
      assert.strictEqual(box.log.builds, 2)
      const event = yield* PubSub.take(events)
      assert.strictEqual(event._tag, "InstanceRestarted")
      assert.include(event._tag === "InstanceRestarted" ? event.detail : "", "broken")
      // A WorkerDefect failed as a typed error is the handler's answer, not its death.
      const relayed = yield* Effect.exit(handle.relayDefect())
      assert.isTrue(Exit.isFailure(relayed))
      assert.deepStrictEqual(yield* handle.peek(), [2, 3])
      assert.strictEqual(box.log.finalized, 1)
    }).pipe(Effect.scoped, Effect.provide(Corps.layer([box.impl], { placement: {} })))
  })

  it.live("resume (the default): the caller gets WorkerDefect, the state is kept", () => {
    const box = makeBox("resume")
    return Effect.gen(function* () {
      const handle = yield* Box
      yield* handle.put({ item: 1 })
      yield* Deferred.succeed(box.gate, undefined)
      defectOf(yield* Effect.exit(handle.breakAfterGate()))
      assert.deepStrictEqual(yield* handle.put({ item: 2 }), [1, 2])
      assert.strictEqual(box.log.builds, 1)
      assert.strictEqual(box.log.finalized, 0)
    }).pipe(Effect.scoped, Effect.provide(Corps.layer([box.impl], { placement: {} })))
  })

  for (const kind of ["thread", "process"] as const) {
    it.live(`restart in a ${kind} Env: fresh state, finalizers ran there`, () =>
      Effect.gen(function* () {
        const tally = yield* Tally
        yield* tally.add({ by: 5 })
        const pid = yield* tally.pid()
        // A thread shares the caller's pid: only a process Env can be told apart by it.
        if (kind === "process") assert.notStrictEqual(pid, process.pid)
        defectOf(yield* Effect.exit(tally.boom()))
        assert.strictEqual(yield* tally.finalized(), 1)
        assert.strictEqual(yield* tally.add({ by: 1 }), 1)
        // Another key was never broken.
        const other = tally.instance("other")
        assert.strictEqual(yield* other.add({ by: 2 }), 2)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Corps.layer([TallyLive], {
            module: fixtures,
            placement: { envs: { pool: { kind, count: 1 } }, default: "pool" } satisfies Placement.Placement
          }).pipe(Layer.provide(NodeEnv.layer))
        )
      )
    )
  }
})

// ---------------------------------------------------------------------------
// Persisted state, memory store
// ---------------------------------------------------------------------------

class Counter extends Worker.Service<Counter>()("Counter", {
  increment: { payload: { by: Schema.Number }, success: Schema.Number },
  get: { success: Schema.Number },
  boom: { payload: { by: Schema.Number } },
  refuse: { payload: { by: Schema.Number }, error: Schema.String },
  read: { success: Schema.Number }
}) {}

const Count = Schema.Struct({ n: Schema.Number })

const makeCounter = (
  store: State.Store,
  options?: { readonly commit?: State.Commit; readonly onDefect?: "resume" | "restart" }
) => {
  const log = { builds: 0 }
  const impl = Counter.conc(
    (_key, state) =>
      Effect.sync(() => {
        log.builds++
        return {
          increment: ({ by }) => state.update((s) => ({ n: s.n + by })).n,
          get: () => state.get().n,
          boom: ({ by }) => {
            state.set({ n: state.get().n + by })
            throw new Error("boom")
          },
          refuse: ({ by }) => {
            state.set({ n: state.get().n + by })
            return Effect.fail("refused")
          },
          read: () => state.get().n
        }
      }),
    {
      onDefect: options?.onDefect ?? "restart",
      concurrent: ["read"],
      state: { schema: Count, initial: { n: 0 }, store, commit: options?.commit }
    }
  )
  return { impl, log }
}

const inCorps =
  (impl: Worker.AnyImplementation) =>
  <A, E, R>(body: Effect.Effect<A, E, R>) =>
    body.pipe(Effect.scoped, Effect.provide(Corps.layer([impl], { placement: {} }))) as Effect.Effect<A, unknown>

describe("persisted state (memory store)", () => {
  it.live("a restarted instance resumes from the last committed state; a dying call's change is rolled back", () => {
    const store = State.memory()
    const counter = makeCounter(store)
    return inCorps(counter.impl)(
      Effect.gen(function* () {
        const handle = yield* Counter
        for (let i = 0; i < 10; i++) yield* handle.increment({ by: 1 })
        defectOf(yield* Effect.exit(handle.boom({ by: 100 })))
        assert.strictEqual(yield* handle.get(), 10)
        assert.strictEqual(counter.log.builds, 2)
        // A typed failure is an answer: its change is kept.
        assert.deepStrictEqual(yield* Effect.flip(handle.refuse({ by: 5 })), "refused")
        assert.strictEqual(yield* handle.get(), 15)
        assert.strictEqual(yield* handle.read(), 15)
        // Keys are separate states.
        assert.strictEqual(yield* handle.instance("b").increment({ by: 2 }), 2)
      })
    )
  })

  it.live("a new Corps on the same store starts where the last one left off", () =>
    Effect.gen(function* () {
      const store = State.memory()
      yield* inCorps(makeCounter(store).impl)(
        Effect.flatMap(Counter, (c) => Effect.repeat(c.increment({ by: 2 }), { times: 4 }))
      )
      const again = yield* inCorps(makeCounter(store).impl)(Effect.flatMap(Counter, (c) => c.get()))
      assert.strictEqual(again, 10)
    })
  )

  it.live("commit every n: the good state is written on close, a die rolls back only its own call", () =>
    Effect.gen(function* () {
      const store = State.memory()
      const first = makeCounter(store, { commit: { every: 3 }, onDefect: "resume" })
      yield* inCorps(first.impl)(
        Effect.gen(function* () {
          const handle = yield* Counter
          yield* handle.increment({ by: 1 })
          yield* handle.increment({ by: 1 })
          defectOf(yield* Effect.exit(handle.boom({ by: 100 })))
          assert.strictEqual(yield* handle.get(), 2)
        })
      )
      const again = yield* inCorps(makeCounter(store).impl)(Effect.flatMap(Counter, (c) => c.get()))
      assert.strictEqual(again, 2)
    })
  )

  it("bad state options are a StateError where the implementation is defined", () => {
    const store = State.memory()
    const bad = (options: any) => () =>
      Counter.conc((_key: string, _state: any) => Effect.succeed({} as any), {
        state: { schema: Count, store, ...options }
      })
    for (const every of [0, -1, 1.5]) {
      assert.throws(bad({ initial: { n: 0 }, commit: { every } }), StateError)
    }
    assert.throws(bad({ initial: { n: "zero" } }), StateError)
    try {
      bad({ initial: { n: 0 }, commit: { every: 0 } })()
      assert.fail("expected a StateError")
    } catch (error) {
      assert.strictEqual((error as StateError).reason, "options")
    }
  })

  it.live("a store that cannot be read fails the call with InstanceStartFailed(StateError load)", () => {
    const broken = State.fromKeyValueStore(Layer.effect(KeyValueStore.KeyValueStore, Effect.fail("no store")), "broken")
    return inCorps(makeCounter(broken).impl)(
      Effect.gen(function* () {
        const handle = yield* Counter
        const error = yield* Effect.flip(handle.increment({ by: 1 }))
        assert.strictEqual(error._tag, "InstanceStartFailed")
        const failed = error as InstanceStartFailed
        assert.deepStrictEqual([failed.worker, failed.key], ["Counter", "default"])
        assert.include(failed.reason, "StateError: Counter[default]: persisted state load failed")
        assert.instanceOf(failed.defect, StateError)
        assert.strictEqual((failed.defect as StateError).reason, "load")
      })
    )
  })
})

// ---------------------------------------------------------------------------
// Persisted state in PostgreSQL, through a process Env killed with SIGKILL
// ---------------------------------------------------------------------------

const Sql = PgClient.layer({ url: Redacted.make(databaseUrl), onnotice: () => {} } as PgClient.PgPoolConfig)
const dropTable = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`DROP TABLE IF EXISTS ${sql(table)}`
}).pipe(Effect.provide(Sql), Effect.orDie)

describe.runIf(postgres)("persisted state (PostgreSQL)", () => {
  it.live("Envs opening the same fresh table at once all succeed (its creation races in PostgreSQL)", () =>
    Effect.gen(function* () {
      const fresh = `corps_state_race_${Date.now().toString(36)}`
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* sql`DROP TABLE IF EXISTS ${sql(fresh)}`
        }).pipe(Effect.provide(Sql), Effect.orDie)
      )
      // As 8 threads or processes starting together would, each with its own connection pool.
      const opened = yield* Effect.forEach(
        Array.from({ length: 8 }),
        () => Effect.exit(Effect.scoped(Layer.build(State.postgres({ url: databaseUrl, table: fresh }).layer))),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        opened.map((exit) => exit._tag),
        Array.from({ length: 8 }, () => "Success")
      )
    })
  )

  it.live(
    "a process Env killed with SIGKILL comes back with exactly the acknowledged increments",
    () =>
      Effect.gen(function* () {
        yield* Effect.addFinalizer(() => dropTable)
        const acknowledged = yield* Effect.gen(function* () {
          const counter = yield* Saved
          let acknowledged = 0
          for (let i = 0; i < 20; i++) {
            yield* counter.increment({ by: 1 })
            acknowledged++
          }
          // A dying call in between changes nothing.
          defectOf(yield* Effect.exit(counter.boom({ by: 1000 })))
          const pid = yield* counter.pid()
          assert.notStrictEqual(pid, process.pid)
          // The pool restarts the Env (until then calls fail with CallLost): wait for it to say so.
          const hub = yield* Corps.Events
          const events = yield* PubSub.subscribe(hub.pubsub)
          process.kill(pid, "SIGKILL")
          while (true) {
            const event = yield* PubSub.take(events)
            if (event._tag === "EnvStarted" && event.attempt > 0) break
          }
          const get = yield* counter.get()
          assert.strictEqual(get, acknowledged)
          assert.notStrictEqual(yield* counter.pid(), pid)
          for (let i = 0; i < 5; i++) {
            yield* counter.increment({ by: 1 })
            acknowledged++
          }
          assert.strictEqual(yield* counter.get(), acknowledged)
          return acknowledged
        }).pipe(
          Effect.scoped,
          Effect.provide(
            Corps.layer([SavedPostgres], {
              module: fixtures,
              placement: {
                envs: { pool: { kind: "process", count: 1 } },
                default: "pool"
              } satisfies Placement.Placement
            }).pipe(Layer.provide(NodeEnv.layer))
          )
        )
        // What the next Corps would start from, in this run's table.
        const rows = yield* Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<{ id: string; value: Uint8Array }>`SELECT id, value FROM ${sql(table)}`
        }).pipe(Effect.provide(Sql), Effect.orDie)
        assert.deepStrictEqual(
          rows.map((row) => [row.id, new TextDecoder().decode(row.value)]),
          [["Saved/default", JSON.stringify({ n: acknowledged })]]
        )
      }).pipe(Effect.scoped),
    60_000
  )
})

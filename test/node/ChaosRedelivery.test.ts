/**
 * Re-delivery of calls lost with a thread or process Env, and quarantine of
 * poison calls: real Envs taken down by the calls themselves.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Schedule, Stream } from "effect"
import * as Duration from "effect/Duration"
import { TestClock } from "effect/testing"
import { CallLost, PoisonCall } from "../../src/CorpsError.ts"
import type { CorpsEvent } from "../../src/CorpsEvent.ts"
import { Corps, type Placement } from "../../src/index.ts"
import type { Register } from "../../src/internal/dispatch.ts"
import { makeHub } from "../../src/internal/events.ts"
import type * as Wire from "../../src/internal/wire.ts"
import { NodeEnv } from "../../src/node/index.ts"
import * as Redelivery from "../../src/node/redelivery.ts"
import { hostFor } from "../../src/node/routing.ts"
import { BadRetry, BadRetryLive, Job, JobLive, Tally, TallyLive } from "../fixtures/chaos.ts"

const fixtures = new URL("../fixtures/chaos.ts", import.meta.url).href

const corps = (kind: "thread" | "process", count: number) =>
  Corps.layer([JobLive, TallyLive], {
    module: fixtures,
    placement: { envs: { pool: { kind, count } }, default: "pool" } satisfies Placement.Placement
  }).pipe(Layer.provide(NodeEnv.layer))

/** A fresh path for a `hangOnce` call. */
const freshPath = (): string => join(mkdtempSync(join(tmpdir(), "corps-redelivery-")), "ran")

/** The error a failed call ended with. */
const errorOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" ? error.value : undefined
}

/** Collects the Corps' events of the given tags while `body` runs. */
const watching = <A, E, R>(tags: ReadonlyArray<CorpsEvent["_tag"]>, body: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const seen: Array<CorpsEvent> = []
    const watcher = yield* Effect.forkChild(
      Corps.events.pipe(
        Stream.filter((event) => tags.includes(event._tag)),
        Stream.runForEach((event) => Effect.sync(() => seen.push(event)))
      ),
      { startImmediately: true }
    )
    const result = yield* body
    yield* Fiber.interrupt(watcher)
    return { result, seen }
  })

/** A key of Tally whose instance lives in slot `index` of `count`. */
const keyIn = (index: number, count: number): string => {
  const hosts = Array.from({ length: count }, (_, i) => i)
  for (let i = 0; ; i++) if (hostFor(`k${i}`, hosts) === index) return `k${i}`
}

describe("re-delivery", () => {
  for (const kind of ["thread", "process"] as const) {
    describe(kind, () => {
      it.live("an idempotent Func call in flight when its Env dies is sent again and succeeds", () =>
        Effect.gen(function* () {
          const job = yield* Job
          const path = freshPath()
          const { result, seen } = yield* watching(
            ["CallRedelivered"],
            Effect.gen(function* () {
              // One Env: the call hangs there, the next call takes that Env down with the first still in flight.
              const first = yield* Effect.forkChild(job.hangOnce({ path }), { startImmediately: true })
              const killer = yield* Effect.exit(job.poisonNoRetry({ n: 0 }))
              const lost = errorOf(killer)
              assert.instanceOf(lost, CallLost)
              assert.strictEqual(lost.mayHaveRun, true)
              return yield* Fiber.join(first)
            })
          )
          assert.strictEqual(result, "again")
          assert.isAtLeast(seen.length, 1)
          const event = seen[0]!
          assert.strictEqual(event._tag, "CallRedelivered")
          if (event._tag === "CallRedelivered") {
            assert.strictEqual(event.worker, "Job")
            assert.strictEqual(event.method, "hangOnce")
            assert.strictEqual(event.attempt, 1)
          }
        }).pipe(Effect.provide(corps(kind, 1)), Effect.scoped)
      )

      it.live("an idempotent Conc call waits for its key's Env to be restarted; other calls fail with CallLost", () =>
        Effect.gen(function* () {
          const tally = yield* Tally
          const key = keyIn(1, 2)
          const instance = tally.instance(key)
          const path = freshPath()
          const first = yield* Effect.forkChild(instance.hangOnce({ path }), { startImmediately: true })
          const hanging = yield* Effect.forkChild(Effect.exit(instance.once({ n: 1 })), { startImmediately: true })
          const killer = yield* Effect.exit(instance.exit())
          assert.strictEqual(errorOf(killer)?._tag, "CallLost")
          // Not idempotent: it fails, saying it may have run.
          const other = errorOf(yield* Fiber.join(hanging))
          assert.instanceOf(other, CallLost)
          assert.strictEqual(other.mayHaveRun, true)
          // Idempotent: answered by the restarted Env, whose pid or thread differs.
          assert.strictEqual(yield* Fiber.join(first), "again")
          assert.strictEqual(yield* instance.echo({ n: 5 }), 5)
        }).pipe(Effect.provide(corps(kind, 2)), Effect.scoped)
      )

      it.live("a poison call is quarantined after 2 crashes (or its quarantineAfter); the Envs keep serving", () =>
        Effect.gen(function* () {
          const job = yield* Job
          const tally = yield* Tally
          const { result, seen } = yield* watching(
            ["CallRedelivered", "CallQuarantined"],
            Effect.gen(function* () {
              const poison = errorOf(yield* Effect.exit(job.poison({ n: 1 })))
              const poison3 = errorOf(yield* Effect.exit(job.poison3({ n: 2 })))
              const concPoison = errorOf(yield* Effect.exit(tally.instance(keyIn(0, 2)).poison()))
              return { poison, poison3, concPoison }
            })
          )
          assert.strictEqual(result.poison?._tag, "PoisonCall")
          if (result.poison?._tag === "PoisonCall") {
            assert.strictEqual(result.poison.worker, "Job")
            assert.strictEqual(result.poison.method, "poison")
            assert.strictEqual(result.poison.crashes, 2)
          }
          assert.strictEqual(result.poison3?._tag === "PoisonCall" ? result.poison3.crashes : -1, 3)
          assert.strictEqual(result.concPoison?._tag === "PoisonCall" ? result.concPoison.crashes : -1, 2)
          const quarantined = seen.filter((event) => event._tag === "CallQuarantined")
          assert.deepStrictEqual(
            quarantined.map((event) => (event._tag === "CallQuarantined" ? [event.method, event.crashes] : [])),
            [
              ["poison", 2],
              ["poison3", 3],
              ["poison", 2]
            ]
          )
          // Every crash but the last of each call was followed by a re-send.
          assert.isAtLeast(seen.filter((event) => event._tag === "CallRedelivered").length, 1 + 2 + 1)
          // Both Envs are back: Funcs and every Conc key are served (idempotent calls ride out a restart).
          const squares = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, n) => n),
            (n) => job.square({ n }),
            {
              concurrency: 4
            }
          )
          assert.deepStrictEqual(
            squares,
            Array.from({ length: 20 }, (_, n) => n * n)
          )
          assert.strictEqual(yield* tally.instance(keyIn(0, 2)).echo({ n: 3 }), 3)
          assert.strictEqual(yield* tally.instance(keyIn(1, 2)).echo({ n: 4 }), 4)
        }).pipe(Effect.provide(corps(kind, 2)), Effect.scoped)
      )
    })
  }

  it.live("invalid re-delivery options are an EnvStartError at Corps start, naming the method", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(
          Corps.layer([BadRetryLive], {
            module: fixtures,
            placement: { envs: { pool: { kind: "thread", count: 1 } }, default: "pool" }
          }).pipe(Layer.provide(NodeEnv.layer))
        ).pipe(Effect.scoped)
      )
      assert.strictEqual(error._tag, "EnvStartError")
      assert.include(error.message, "BadRetry.run: quarantineAfter must be an integer ≥ 1, got 0")
      // Only the contract is wrong: nothing needed BadRetry in scope to find it.
      assert.isDefined(BadRetry.methods.run)
    })
  )

  it("policiesOf refuses bad retry options and keeps only idempotent, non-stream methods", () => {
    const worker = (methods: Record<string, object>) => ({ key: "W", methods }) as any
    assert.strictEqual(
      Redelivery.policiesOf(worker({ m: { idempotent: true, retry: { times: -1 } } })),
      "W.m: retry.times must be an integer ≥ 0, got -1"
    )
    assert.strictEqual(
      Redelivery.policiesOf(worker({ m: { idempotent: true, retry: { base: "soon" } } })),
      "W.m: retry.base is not a duration: soon"
    )
    assert.strictEqual(
      Redelivery.policiesOf(worker({ m: { quarantineAfter: 1.5 } })),
      "W.m: quarantineAfter must be an integer ≥ 1, got 1.5"
    )
    const policies = Redelivery.policiesOf(
      worker({ a: { idempotent: true }, b: {}, c: { idempotent: true, stream: true }, d: { quarantineAfter: 4 } })
    )
    assert.deepStrictEqual(typeof policies === "string" ? policies : [...policies.keys()], ["a"])
  })

  it.effect("the default retry pauses 20, 40, 80… ms, at most 1 s, for 30 s; the data form sets each bound", () =>
    Effect.gen(function* () {
      /** The pauses of a schedule stepped at the times its own pauses give, until it ends. */
      const pausesOf = (retry: Parameters<typeof Redelivery.scheduleOf>[0]) =>
        Effect.gen(function* () {
          const step = yield* Schedule.toStep(Redelivery.scheduleOf(retry))
          const pauses: Array<number> = []
          let now = 0
          while (pauses.length < 1000) {
            const next = yield* Effect.exit(step(now, lostAt(false)))
            if (Exit.isFailure(next)) break
            const pause = Duration.toMillis(next.value[1])
            pauses.push(pause)
            now += pause
          }
          return pauses
        })
      const defaults = yield* pausesOf(undefined)
      assert.deepStrictEqual(defaults.slice(0, 8), [20, 40, 80, 160, 320, 640, 1000, 1000])
      // Stepped while at most 30 s have passed since the loss: 1,260 ms of growing pauses, then 29 of 1 s.
      assert.deepStrictEqual(
        defaults.slice(6),
        Array.from({ length: 29 }, () => 1000)
      )
      assert.deepStrictEqual(yield* pausesOf({ times: 3, base: "50 millis", cap: "120 millis" }), [50, 100, 120])
      assert.deepStrictEqual(yield* pausesOf({ within: "1 second", base: "100 millis" }), [100, 200, 400, 800])
      assert.deepStrictEqual(yield* pausesOf({ times: 0 }), [])
      // A Schedule is used as it is.
      assert.deepStrictEqual(yield* pausesOf(Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 2 }))), [5, 5])
    })
  )

  it.effect(
    "redeliver pauses by the schedule (TestClock), sends nothing while the Env is down, counts losses in flight",
    () =>
      Effect.gen(function* () {
        const events = yield* makeHub
        const seen = yield* Effect.forkChild(Stream.runCollect(Stream.take(events.stream, 2)), {
          startImmediately: true
        })
        let up = false
        const sent: Array<number> = []
        // Lost in flight once more, then answered.
        const replies: Array<Effect.Effect<Wire.Exit, unknown>> = [
          Effect.fail(lostAt(true)),
          Effect.succeed({ _tag: "Success", value: 42 })
        ]
        const register: Register = (_call, resume) => {
          sent.push(sent.length)
          resume(replies.shift()!)
          return undefined
        }
        const context: Redelivery.Context = { corps: "c", events, closing: () => false }
        const policy: Redelivery.Policy = { schedule: Redelivery.scheduleOf(undefined), quarantineAfter: 3 }
        const request: Wire.Call = { worker: "W", key: "", method: "m", payload: null }
        const fiber = yield* Effect.forkChild(
          Redelivery.redeliver(context, policy, request, { register, up: () => up }, lostAt(true)),
          { startImmediately: true }
        )
        // Pauses of 20 and 40 ms pass with the Env down: nothing is sent.
        yield* TestClock.adjust(Duration.millis(60))
        assert.strictEqual(sent.length, 0)
        up = true
        // The next pauses, 80 then 160 ms, each end with a re-send.
        for (const [millis, sends] of [
          [79, 0],
          [1, 1],
          [159, 1],
          [1, 2]
        ] as const) {
          yield* TestClock.adjust(Duration.millis(millis))
          assert.strictEqual(sent.length, sends)
        }
        assert.deepStrictEqual(yield* Fiber.join(fiber), { _tag: "Success", value: 42 })
        const reported = [...(yield* Fiber.join(seen))]
        assert.deepStrictEqual(
          reported.map((event) =>
            event._tag === "CallRedelivered" ? [event.worker, event.method, event.attempt] : []
          ),
          [
            ["W", "m", 1],
            ["W", "m", 2]
          ]
        )

        // Two losses in flight with quarantineAfter 2: PoisonCall at the second, after one re-send.
        const alwaysLost: Redelivery.Route = {
          register: (_call, resume) => {
            resume(Effect.fail(lostAt(true)))
            return undefined
          },
          up: () => true
        }
        const poisoned = yield* Effect.forkChild(
          Effect.flip(
            Redelivery.redeliver(context, { ...policy, quarantineAfter: 2 }, request, alwaysLost, lostAt(true))
          ),
          { startImmediately: true }
        )
        yield* TestClock.adjust(Duration.millis(20))
        const poison = yield* Fiber.join(poisoned)
        assert.instanceOf(poison, PoisonCall)
        assert.strictEqual(poison instanceof PoisonCall ? poison.crashes : -1, 2)
        assert.strictEqual(poison instanceof PoisonCall ? poison.reason : "", "thread exited with code 7")

        // The Env never comes back: the policy gives up with a CallLost that may have run (the first send was in flight).
        const down: Redelivery.Route = { register: alwaysLost.register, up: () => false }
        const refused = yield* Effect.forkChild(
          Effect.flip(
            Redelivery.redeliver(
              context,
              { schedule: Redelivery.scheduleOf({ times: 2 }), quarantineAfter: 2 },
              request,
              down,
              lostAt(true)
            )
          ),
          { startImmediately: true }
        )
        yield* TestClock.adjust(Duration.millis(60))
        const gaveUp = yield* Fiber.join(refused)
        assert.instanceOf(gaveUp, CallLost)
        assert.strictEqual(gaveUp instanceof CallLost ? gaveUp.mayHaveRun : undefined, true)

        // A Corps that is closing: no re-send, the caller gets the loss as it was.
        const closing = yield* Effect.flip(
          Redelivery.redeliver({ ...context, closing: () => true }, policy, request, alwaysLost, lostAt(true))
        )
        assert.instanceOf(closing, CallLost)
      })
  )
})

const lostAt = (mayHaveRun: boolean): CallLost =>
  new CallLost({ worker: "W", method: "m", env: "pool#0", reason: "thread exited with code 7", mayHaveRun })

/**
 * Supervision policies: the backoff sequence and the intensity limit are
 * pure, checked with exact values and driven by the TestClock; policies in
 * the placement are checked like the rest of it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Random, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Env, Placement, Supervision } from "../src/index.ts"

const noJitter = { baseMillis: 100, capMillis: 5000, jitter: 0 }

describe("Supervision", () => {
  it("backoffDelay doubles from the base up to the cap, jitter scales it within ±jitter and never past the cap", () => {
    const attempts = [1, 2, 3, 4, 5, 6, 7, 8]
    assert.deepStrictEqual(
      attempts.map((n) => Supervision.backoffDelay(undefined, n, 0.5)),
      [100, 200, 400, 800, 1600, 3200, 5000, 5000]
    )
    assert.deepStrictEqual(
      attempts.map((n) => Supervision.backoffDelay(undefined, n, 0)),
      [80, 160, 320, 640, 1280, 2560, 4000, 4000]
    )
    assert.deepStrictEqual(
      attempts.map((n) => Supervision.backoffDelay(undefined, n, 0.999999)),
      [120, 240, 480, 960, 1920, 3840, 5000, 5000]
    )
    assert.deepStrictEqual(
      [1, 2, 3].map((n) => Supervision.backoffDelay({ baseMillis: 10, capMillis: 25, jitter: 0 }, n, 0.3)),
      [10, 20, 25]
    )
  })

  it.effect("the exponential schedule sleeps exactly its delays on the TestClock", () =>
    Effect.gen(function* () {
      const step = yield* Schedule.toStepWithSleep(Supervision.exponential(noJitter))
      const fiber = yield* Effect.forkChild(
        Effect.forEach([1, 2, 3, 4, 5, 6, 7], () => Effect.andThen(step(undefined), Clock.currentTimeMillis))
      )
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* Fiber.join(fiber), [100, 300, 700, 1500, 3100, 6300, 11300])
    })
  )

  it.effect("with jitter, a seeded Random gives the delays backoffDelay computes from its draws", () =>
    Effect.gen(function* () {
      const draws = yield* Effect.forEach([1, 2, 3, 4, 5], () => Random.next).pipe(Random.withSeed("supervision"))
      const expected = draws.map((r, i) => Supervision.backoffDelay(undefined, i + 1, r))
      const step = yield* Schedule.toStep(Supervision.exponential())
      const delays = yield* Effect.forEach([1, 2, 3, 4, 5], () =>
        Effect.map(step(0, undefined), ([delay]) => delay)
      ).pipe(Random.withSeed("supervision"))
      assert.deepStrictEqual(delays, expected)
      for (const [i, delay] of delays.entries()) {
        const plain = Math.min(5000, 100 * 2 ** i)
        assert.isAtLeast(delay, Math.round(plain * 0.8))
        assert.isAtMost(delay, Math.min(5000, Math.round(plain * 1.2)))
      }
    })
  )

  it("recordRestart: more than maxRestarts within the window exhausts; older restarts fall out of it", () => {
    const limit = { maxRestarts: 3, withinMillis: 5000 }
    let history: ReadonlyArray<number> = []
    const at = (now: number) => {
      const counted = Supervision.recordRestart(history, now, limit)
      history = counted.history
      return counted.exhausted
    }
    assert.deepStrictEqual([at(0), at(1000), at(2000)], [false, false, false])
    assert.deepStrictEqual(history, [0, 1000, 2000])
    // 0 and 1000 are 5 s or more before 6000: they no longer count.
    assert.isFalse(at(6000))
    assert.deepStrictEqual(history, [2000, 6000])
    assert.deepStrictEqual([at(6100), at(6200)], [false, true])
    assert.deepStrictEqual(Supervision.recordRestart([], 0, { maxRestarts: 0, withinMillis: 1 }).exhausted, true)
  })

  it.effect(
    "backoffs: the first restart after a quiet window is immediate, the next ones back off, a quiet window resets",
    () =>
      Effect.gen(function* () {
        const state = Supervision.backoffs(Supervision.resolve({ backoff: noJitter, withinMillis: 10_000 }))
        const crashAt = (times: ReadonlyArray<number>) =>
          Effect.forEach(times, (time) =>
            Effect.gen(function* () {
              yield* TestClock.setTime(time)
              return yield* state.next(yield* Clock.currentTimeMillis)
            })
          )
        assert.deepStrictEqual(yield* crashAt([1000, 1500, 2000, 3000, 4000]), [
          { delayMillis: 0, attempt: 1 },
          { delayMillis: 100, attempt: 2 },
          { delayMillis: 200, attempt: 3 },
          { delayMillis: 400, attempt: 4 },
          { delayMillis: 800, attempt: 5 }
        ])
        // 10 s without a crash: the backoff starts over.
        assert.deepStrictEqual(yield* crashAt([14_000, 14_100]), [
          { delayMillis: 0, attempt: 1 },
          { delayMillis: 100, attempt: 2 }
        ])
      })
  )

  it.effect("backoffs: a Schedule from code gives the delays, and its end gives up", () =>
    Effect.gen(function* () {
      const policy = Supervision.resolve(
        Supervision.policy({ backoff: Schedule.spaced("250 millis").pipe(Schedule.upTo({ times: 2 })) })
      )
      const state = Supervision.backoffs(policy)
      const results = yield* Effect.forEach([0, 10, 20, 30], (now) => state.next(now))
      assert.deepStrictEqual(results, [
        { delayMillis: 0, attempt: 1 },
        { delayMillis: 250, attempt: 2 },
        { delayMillis: 250, attempt: 3 },
        undefined
      ])
    })
  )

  it("policy converts durations to milliseconds; resolve takes each field from the first policy that gives it", () => {
    const policy = Supervision.policy({
      backoff: { base: "50 millis", cap: "2 seconds", jitter: 0.1 },
      maxRestarts: 3,
      within: "1 minute",
      outcome: "stop"
    })
    assert.deepStrictEqual(policy, {
      backoff: { baseMillis: 50, capMillis: 2000, jitter: 0.1 },
      maxRestarts: 3,
      withinMillis: 60_000,
      outcome: "stop"
    })
    const resolved = Supervision.resolve({ maxRestarts: 1 }, { maxRestarts: 7, outcome: "stop" })
    assert.deepStrictEqual(
      { maxRestarts: resolved.maxRestarts, withinMillis: resolved.withinMillis, outcome: resolved.outcome },
      { maxRestarts: 1, withinMillis: Supervision.defaults.withinMillis, outcome: "stop" }
    )
    const defaults = Supervision.resolve()
    assert.deepStrictEqual(
      { maxRestarts: defaults.maxRestarts, withinMillis: defaults.withinMillis, outcome: defaults.outcome },
      { maxRestarts: 10, withinMillis: 10_000, outcome: "escalate" }
    )
  })

  describe("in the placement", () => {
    it.effect("per Env and per Worker, with health settings", () =>
      Effect.gen(function* () {
        const input = {
          envs: {
            cpu: {
              kind: "thread",
              count: 2,
              supervision: { backoff: { baseMillis: 10 }, maxRestarts: 20, withinMillis: 60_000, outcome: "stop" },
              hangTimeoutMillis: 2000,
              spare: false,
              resourceLimits: { maxOldGenerationSizeMb: 64 }
            },
            io: { kind: "process", maxOldSpaceSizeMb: 128, supervision: {} }
          },
          workers: { Counter: { env: "cpu", supervision: { outcome: "escalate", maxRestarts: 1 } } }
        }
        const placement = yield* Placement.decode(input)
        assert.deepStrictEqual(placement, input as unknown as Placement.Placement)
        const resolved = yield* Placement.resolve(placement, ["Counter", "Relay"])
        assert.deepStrictEqual(resolved.get("Counter")?.supervision, { outcome: "escalate", maxRestarts: 1 })
        assert.isUndefined(resolved.get("Relay")?.supervision)
      })
    )

    it.effect("Env.thread and Env.process take the health options, and pass the placement's check", () =>
      Effect.gen(function* () {
        const cpu = Env.thread({ count: 2, spare: false, supervision: Supervision.policy({ maxRestarts: 1 }) })
        assert.deepStrictEqual(cpu, { kind: "thread", count: 2, spare: false, supervision: { maxRestarts: 1 } })
        const io = Env.process({ maxOldSpaceSizeMb: 64, hangTimeoutMillis: 1000 })
        assert.deepStrictEqual(io, { kind: "process", maxOldSpaceSizeMb: 64, hangTimeoutMillis: 1000 })
        const placement = yield* Placement.decode({ envs: { cpu, io } })
        assert.deepStrictEqual(placement.envs, { cpu, io })
        assert.deepStrictEqual(Env.thread(), { kind: "thread" })
      })
    )

    it.effect("a Schedule given in code passes the placement's check", () =>
      Effect.gen(function* () {
        const schedule = Schedule.spaced("1 second")
        const placement = yield* Placement.decode({
          envs: { cpu: { kind: "thread", supervision: Supervision.policy({ backoff: schedule }) } }
        })
        const cpu = placement.envs?.cpu
        assert.strictEqual(cpu?.kind === "thread" ? cpu.supervision?.backoff : undefined, schedule)
      })
    )

    it.effect("bad entries are PlacementErrors naming their key", () =>
      Effect.gen(function* () {
        const bad = (input: unknown) => Effect.flip(Placement.decode(input))
        const typo = yield* bad({ envs: { cpu: { kind: "thread", supervision: { maxRestart: 3 } } } })
        assert.strictEqual(typo.key, "envs.cpu.supervision.maxRestart")
        assert.include(typo.reason, `did you mean "maxRestarts"?`)
        const outcome = yield* bad({ envs: { cpu: { kind: "process", supervision: { outcome: "restart" } } } })
        assert.strictEqual(outcome.key, "envs.cpu.supervision.outcome")
        const jitter = yield* bad({ envs: { cpu: { kind: "thread", supervision: { backoff: { jitter: 2 } } } } })
        assert.include(jitter.key, "envs.cpu.supervision.backoff")
        const backoffTypo = yield* bad({ envs: { cpu: { kind: "thread", supervision: { backoff: { base: 1 } } } } })
        assert.strictEqual(backoffTypo.key, "envs.cpu.supervision.backoff.base")
        assert.include(backoffTypo.reason, "baseMillis")
        const limits = yield* bad({ envs: { cpu: { kind: "thread", resourceLimits: { maxOldGenerationSize: 1 } } } })
        assert.strictEqual(limits.key, "envs.cpu.resourceLimits.maxOldGenerationSize")
        assert.include(limits.reason, `did you mean "maxOldGenerationSizeMb"?`)
        // A process has no resourceLimits, a thread no maxOldSpaceSizeMb.
        const wrongKind = yield* bad({ envs: { cpu: { kind: "process", resourceLimits: {} } } })
        assert.strictEqual(wrongKind.key, "envs.cpu.resourceLimits")
        const hang = yield* bad({ envs: { cpu: { kind: "thread", hangTimeoutMillis: 0 } } })
        assert.strictEqual(hang.key, "envs.cpu.hangTimeoutMillis")
        const worker = yield* bad({ workers: { Counter: { env: "local", supervision: { withinMillis: 0 } } } })
        assert.strictEqual(worker.key, "workers.Counter.supervision.withinMillis")
      })
    )
  })
})

/**
 * Which metered calls are timed (src/internal/recorder.ts): every call is
 * counted, but the clock is read for a calm method's every call and for an
 * even sample of a busy one's. The ticks are moved by hand here (no timer
 * runs in this file), so the sequences are exact.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { CallSeries, TIMED_PER_TICK, ticks } from "../../src/internal/recorder.ts"

/** Starts `n` calls of `series` in the current tick; answers how many were chosen to be timed. */
const start = (series: CallSeries, n: number): number => {
  let timed = 0
  for (let i = 0; i < n; i++) if (series.timeThis()) timed++
  return timed
}

const withTick = (tick: number) => {
  ticks.current = tick
}

describe("CallSeries timing", () => {
  it("a call to another Env: every call timed while fewer than TIMED_PER_TICK start in a tick", () => {
    const series = new CallSeries("W", "m", "pool", "local")
    withTick(1000)
    assert.strictEqual(start(series, TIMED_PER_TICK), TIMED_PER_TICK)
    withTick(1001)
    assert.strictEqual(start(series, TIMED_PER_TICK - 1), TIMED_PER_TICK - 1)
  })

  it("a busy method: an even sample of about TIMED_PER_TICK calls a tick", () => {
    const series = new CallSeries("W", "m", "pool", "local")
    withTick(2000)
    // The first busy tick is timed in full: the sample follows the rate of the tick before.
    assert.strictEqual(start(series, 100 * TIMED_PER_TICK), 100 * TIMED_PER_TICK)
    withTick(2001)
    assert.strictEqual(start(series, 100 * TIMED_PER_TICK), TIMED_PER_TICK)
    // Evenly: the first call of the tick and then every 100th.
    withTick(2002)
    const chosen: Array<number> = []
    for (let i = 0; i < 100 * TIMED_PER_TICK; i++) if (series.timeThis()) chosen.push(i)
    assert.deepStrictEqual(chosen.slice(0, 3), [0, 100, 200])
  })

  it("after a quiet tick every call is timed again", () => {
    const series = new CallSeries("W", "m", "pool", "local")
    withTick(3000)
    start(series, 50 * TIMED_PER_TICK)
    withTick(3001)
    assert.isBelow(start(series, 50 * TIMED_PER_TICK), 50 * TIMED_PER_TICK)
    // Tick 3002 saw no call: the burst in 3003 is timed from its first call on.
    withTick(3003)
    assert.strictEqual(start(series, 10), 10)
  })

  it("a FastPath call: only the first of each tick", () => {
    const series = new CallSeries("W", "m", "local", "local")
    series.timeAll = false
    withTick(4000)
    assert.strictEqual(start(series, 1000), 1)
    withTick(4001)
    assert.strictEqual(start(series, 5), 1)
  })

  it.effect("an untimed call is counted, not observed; a timed one is both", () =>
    Effect.sync(() => {
      const series = new CallSeries("W", "m", "pool", "local")
      series.inFlight += 3
      series.settleStarted(Exit.succeed(1), Number.NaN)
      series.settleStarted(Exit.fail("boom"), 0)
      series.interrupted(Number.NaN)
      assert.strictEqual(series.calls, 3)
      assert.strictEqual(series.observed, 1)
      assert.strictEqual(series.inFlight, 0)
      assert.strictEqual(series.failures.get("Interrupted"), 1)
      assert.strictEqual(series.histogram().count, 1)
    })
  )

  it.effect("an untimed call still in flight is counted when it ends", () =>
    Effect.gen(function* () {
      const series = new CallSeries("W", "m", "pool", "local")
      series.inFlight++
      const result = yield* series.settleStarted(Effect.as(Effect.yieldNow, 7), Number.NaN)
      assert.strictEqual(result, 7)
      assert.strictEqual(series.calls, 1)
      assert.strictEqual(series.observed, 0)
      assert.strictEqual(series.inFlight, 0)
    })
  )
})

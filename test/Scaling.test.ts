/**
 * The scaling decision is pure: these tests drive it with sample sequences at
 * explicit timestamps (and once on the TestClock) and check every size it
 * chooses. Placement checks of `count` ranges and `scaling` policies are
 * here too.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import { Env, Placement, Scaling } from "../src/index.ts"

const policy = Scaling.resolve({ upAfterMillis: 200, downAfterMillis: 1000, sampleMillis: 100 })
const bounds = { min: 1, max: 4 }

/** Each Env: `inFlight` calls in flight, utilisation `utilization`. */
const envs = (size: number, inFlight: number, utilization: number | undefined) =>
  Array.from({ length: size }, () => ({ inFlight, utilization }))

/**
 * Runs the decision over samples every 100 ms from `start`, each made by
 * `sampleAt(size)` from the size decided so far; answers the sizes after
 * each sample and the decisions.
 */
const drive = (
  samples: number,
  sampleAt: (size: number, at: number) => ReadonlyArray<Scaling.EnvSample>,
  options: { readonly start?: number; readonly size?: number; readonly policy?: Scaling.Resolved } = {}
) => {
  let state = Scaling.initial(options.size ?? 1)
  const sizes: Array<number> = []
  const decisions: Array<Scaling.Decision> = []
  for (let i = 0; i < samples; i++) {
    const at = (options.start ?? 0) + i * 100
    const decision = Scaling.decide(options.policy ?? policy, bounds, state, { at, envs: sampleAt(state.size, at) })
    state = decision.state
    assert.strictEqual(decision.target, state.size)
    sizes.push(state.size)
    decisions.push(decision)
  }
  return { sizes, decisions }
}

describe("Scaling.decide", () => {
  it("grows under sustained pressure once it has lasted upAfterMillis, straight to the demand", () => {
    // 16 in flight on one busy Env: 4 Envs' worth (inFlightPerEnv 4).
    const { sizes, decisions } = drive(5, (size) => envs(size, 16 / size, 1))
    // Samples at 0, 100, 200: pressure for 0, 100, 200 ms → the third one grows.
    assert.deepStrictEqual(sizes, [1, 1, 4, 4, 4])
    assert.strictEqual(decisions[2]!.direction, "up")
    assert.match(decisions[2]!.reason, /demand 4 for 200 ms/)
  })

  it("ignores a short spike: pressure that stops before upAfterMillis resets", () => {
    // Pressure at 0 and 100 ms, quiet at 200, pressure again at 300 and 400: never 200 ms in a row.
    const { sizes } = drive(5, (size, at) => (at === 200 ? envs(size, 0, 0.1) : envs(size, 8, 1)))
    assert.deepStrictEqual(sizes, [1, 1, 1, 1, 1])
    // The same pressure, unbroken, grows at 200 ms.
    assert.deepStrictEqual(drive(3, (size) => envs(size, 8, 1)).sizes, [1, 1, 2])
  })

  it("grows by utilisation alone, with nothing in flight at sampling time", () => {
    // Two Envs at 100%: 2 / 0.75 → 3 Envs.
    const { sizes } = drive(4, (size) => envs(size, 0, size === 2 ? 1 : 0.5), { size: 2 })
    assert.deepStrictEqual(sizes, [2, 2, 3, 3])
  })

  it("does not count calls in flight while the Envs are idle (calls waiting on I/O need no threads)", () => {
    const { sizes } = drive(6, (size) => envs(size, 40, 0.05))
    assert.deepStrictEqual(sizes, [1, 1, 1, 1, 1, 1])
  })

  it("respects maxStepUp and maxStepDown", () => {
    const stepped = Scaling.resolve({ upAfterMillis: 100, downAfterMillis: 100, maxStepUp: 1, maxStepDown: 1 })
    const wide = { min: 1, max: 8 }
    let state = Scaling.initial(1)
    const sizes: Array<number> = []
    for (let i = 0; i < 12; i++) {
      const load = i < 8 ? 1 : 0
      const decision = Scaling.decide(stepped, wide, state, { at: i * 100, envs: envs(state.size, 64 * load, load) })
      assert.isAtMost(Math.abs(decision.target - state.size), 1)
      state = decision.state
      sizes.push(state.size)
    }
    // Up one at a time, each after 100 ms of pressure at the new size (0 and 100 → 2, 200 and 300 → 3…).
    assert.deepStrictEqual(sizes, [1, 2, 2, 3, 3, 4, 4, 5, 5, 4, 3, 2])
  })

  it("shrinks only after downAfterMillis of slack, then one step per sample while it lasts, down to min", () => {
    const { sizes, decisions } = drive(16, (size) => envs(size, 0, 0), { size: 4 })
    // Slack from 0 ms; the sample at 1000 ms is the first after 1 s: 4 → 3, then 2 at 1100, 1 at 1200.
    assert.deepStrictEqual(sizes, [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 2, 1, 1, 1, 1])
    assert.deepStrictEqual(
      decisions.filter((d) => d.direction === "down").map((d) => d.target),
      [3, 2, 1]
    )
  })

  it("a busy sample during the cooldown starts it again", () => {
    const { sizes } = drive(25, (size, at) => (at === 500 ? envs(size, 0, 0.7) : envs(size, 0, 0.05)), { size: 2 })
    // Slack from 0, broken at 500 (0.7 · 2 = 1.4 Envs of work: 2 stays), slack again from 600: shrinks at 1600.
    assert.strictEqual(sizes.indexOf(1), 16)
  })

  it("does not flap around the target: between the thresholds the size holds", () => {
    // Utilisation wanders around the target (0.75) per Env, with calls in flight matching it.
    const wander = [0.8, 0.7, 0.76, 0.66, 0.74, 0.79, 0.6, 0.72]
    const { sizes } = drive(200, (size, at) => envs(size, 2, wander[(at / 100) % wander.length]!), { size: 2 })
    assert.deepStrictEqual([...new Set(sizes)], [2])
  })

  it("after shrinking to match a load, the same load does not grow it back", () => {
    // 4 Envs at 25%: 1 Env of work. Under the lower threshold (0.5625) only at 2 or more Envs: it stops at 2,
    // each at 50%, under the target (0.75), so it does not grow back.
    const { sizes } = drive(40, (size) => envs(size, 0, 1 / size), { size: 4 })
    assert.strictEqual(sizes.at(-1), 2)
    assert.isTrue(sizes.every((size, i) => i === 0 || size <= sizes[i - 1]!))
  })

  it("never leaves min..max, and brings a size outside them back at once", () => {
    const { sizes } = drive(30, (size, at) => envs(size, at < 1500 ? 1000 : 0, at < 1500 ? 1 : 0))
    assert.isTrue(sizes.every((size) => size >= bounds.min && size <= bounds.max))
    assert.strictEqual(Math.max(...sizes), 4)
    const outside = Scaling.decide(policy, { min: 2, max: 3 }, Scaling.initial(5), { at: 0, envs: envs(5, 0, 0) })
    assert.deepStrictEqual([outside.target, outside.direction], [3, "down"])
    const below = Scaling.decide(policy, { min: 2, max: 3 }, Scaling.initial(1), { at: 0, envs: envs(1, 0, 0) })
    assert.deepStrictEqual([below.target, below.direction], [2, "up"])
  })

  it("counts Envs not sampled yet at the mean of the others, and uses calls in flight alone when nothing is known", () => {
    const partly = Scaling.decide(Scaling.resolve({ upAfterMillis: 1 }), bounds, Scaling.initial(2), {
      at: 0,
      envs: [
        { inFlight: 0, utilization: 1 },
        { inFlight: 0, utilization: undefined }
      ]
    })
    assert.strictEqual(partly.state.pressureSince, 0)
    const unknown = drive(3, (size) => envs(size, 12 / size, undefined))
    assert.deepStrictEqual(unknown.sizes, [1, 1, 3])
  })

  it.effect("on the TestClock: sustained pressure sampled every 100 ms grows after 200 ms, not before", () =>
    Effect.gen(function* () {
      let state = Scaling.initial(1)
      const grewAt: Array<number> = []
      for (let i = 0; i < 4; i++) {
        const at = yield* Clock.currentTimeMillis
        const decision = Scaling.decide(policy, bounds, state, { at, envs: envs(state.size, 8, 1) })
        if (decision.direction === "up") grewAt.push(at)
        state = decision.state
        yield* TestClock.adjust("100 millis")
      }
      assert.deepStrictEqual(grewAt, [200])
      assert.strictEqual(state.size, 2)
    })
  )

  it("recommend sizes runners from runner samples by the same rules", () => {
    let state = Scaling.initial(2)
    const runners = (utilization: number) => [
      { runner: "a", inFlight: 0, utilization },
      { runner: "b", inFlight: 0, utilization }
    ]
    for (const at of [0, 100, 200]) state = Scaling.recommend(policy, { min: 1, max: 6 }, state, at, runners(1)).state
    // Two runners at 100%: 2 / 0.75 → 3.
    assert.strictEqual(state.size, 3)
    const idle = Scaling.recommend(policy, { min: 1, max: 6 }, Scaling.initial(2), 0, runners(0))
    assert.strictEqual(idle.direction, "hold")
  })

  it("defaults are documented values, and resolve fills in only what is absent", () => {
    assert.deepStrictEqual(Scaling.resolve(), Scaling.defaults)
    assert.strictEqual(Scaling.resolve({ maxStepUp: 2 }).maxStepUp, 2)
    assert.strictEqual(Scaling.resolve({ maxStepUp: 2 }).downAfterMillis, Scaling.defaults.downAfterMillis)
  })
})

describe("Env count ranges in placements", () => {
  const decodeError = (env: unknown) =>
    Effect.runSync(Effect.flip(Placement.decode({ envs: { cpu: env } })).pipe(Effect.orElseSucceed(() => undefined)))

  it('accepts a range, "auto" and a scaling policy', () => {
    assert.isUndefined(decodeError({ kind: "thread", count: { min: 1, max: 4 }, scaling: { upAfterMillis: 50 } }))
    assert.isUndefined(decodeError({ kind: "process", count: "auto" }))
    assert.isUndefined(decodeError({ kind: "thread", count: 2 }))
  })

  it("refuses min above max, min below 1, an unknown field and a bad policy value, naming the field", () => {
    const inverted = decodeError({ kind: "thread", count: { min: 3, max: 2 } })
    assert.strictEqual(inverted?._tag, "PlacementError")
    assert.strictEqual(inverted?.key, "envs.cpu.count")
    assert.match(inverted!.reason, /min \(3\) must not be above max \(2\)/)
    assert.strictEqual(decodeError({ kind: "thread", count: { min: 0, max: 2 } })?.key, "envs.cpu.count.min")
    const typo = decodeError({ kind: "thread", count: { min: 1, mx: 2 } })
    assert.strictEqual(typo?.key, "envs.cpu.count.mx")
    assert.match(typo!.reason, /did you mean "max"/)
    const policyTypo = decodeError({ kind: "thread", count: "auto", scaling: { upAfterMilis: 3 } })
    assert.strictEqual(policyTypo?.key, "envs.cpu.scaling.upAfterMilis")
    assert.strictEqual(
      decodeError({ kind: "thread", count: "auto", scaling: { targetUtilization: 2 } })?.key,
      "envs.cpu.scaling.targetUtilization"
    )
    assert.strictEqual(decodeError({ kind: "thread", count: "some" })?.key, "envs.cpu.count")
  })

  it('boundsOf: a fixed count, a range, "auto" up to the cores, and the default', () => {
    assert.deepStrictEqual(Env.boundsOf(3, 8), { min: 3, max: 3 })
    assert.deepStrictEqual(Env.boundsOf({ min: 2, max: 5 }, 8), { min: 2, max: 5 })
    assert.deepStrictEqual(Env.boundsOf("auto", 8), { min: 1, max: 8 })
    assert.deepStrictEqual(Env.boundsOf(undefined, 8), { min: 8, max: 8 })
  })
})

/**
 * A runner's figures on their way to the caller: the runner adds up what
 * its Recorder drains into totals since it started; the caller turns two
 * successive totals into what they add (all of them on a first reading, or
 * after the totals went down: a new process).
 */
import { assert, describe, it } from "@effect/vitest"
import type { Metric } from "effect"
import { since, Totals } from "../../src/cluster/internal/RunnerFigures.ts"
import type { Delta } from "../../src/internal/recorder.ts"

const call = (calls: number, extra: Partial<Delta["calls"][number]> = {}): Delta["calls"][number] => ({
  worker: "Account",
  method: "deposit",
  env: "cluster",
  calls,
  observed: calls,
  inFlight: 0,
  failures: [],
  buckets: [calls, 0, 0],
  sum: calls * 2,
  min: 1,
  max: 3,
  ...extra
})

const entities = [
  { id: "effect_cluster_entities", type: "Gauge", attributes: { type: "Account" }, state: { value: 4n } },
  {
    id: "effect_cluster_entity_mailbox_size",
    type: "Gauge",
    attributes: { type: "Account", id: "a" },
    state: { value: 2n }
  },
  {
    id: "effect_cluster_entity_mailbox_size",
    type: "Gauge",
    attributes: { type: "Account", id: "b" },
    state: { value: 1n }
  }
] as unknown as ReadonlyArray<Metric.Metric.Snapshot>

describe("RunnerFigures", () => {
  it("the runner's totals add every drain; entity gauges are summed per entity type", () => {
    const totals = new Totals()
    totals.add({ calls: [call(2, { failures: [["Overdrawn", 1]], inFlight: 3 })], workers: [] })
    totals.add({ calls: [call(5, { failures: [["Overdrawn", 2]], min: 0.5, max: 9 })], workers: [] })
    const figures = totals.figures(entities, "cluster")
    assert.deepStrictEqual(figures.calls, [
      {
        worker: "Account",
        method: "deposit",
        env: "cluster",
        calls: 7,
        observed: 7,
        inFlight: 0,
        failures: [["Overdrawn", 3]],
        buckets: [7, 0, 0],
        sum: 14,
        min: 0.5,
        max: 9
      }
    ])
    assert.deepStrictEqual(figures.workers, [{ worker: "Account", env: "cluster", instances: 4, mailbox: 3 }])
  })

  it("a series drained with nothing in flight reports none in flight; untimed extremes are 0 (JSON has no infinity)", () => {
    const totals = new Totals()
    totals.add({ calls: [call(0, { observed: 0, inFlight: 2, min: Infinity, max: -Infinity })], workers: [] })
    assert.strictEqual(totals.figures([], "cluster").calls[0]!.inFlight, 2)
    assert.strictEqual(totals.figures([], "cluster").calls[0]!.min, 0)
    totals.add({ calls: [], workers: [] })
    assert.strictEqual(totals.figures([], "cluster").calls[0]!.inFlight, 0)
  })

  it("the caller: a first reading counts whole, the next only what it adds, in the caller's Env name", () => {
    const totals = new Totals()
    totals.add({ calls: [call(2, { failures: [["Overdrawn", 1]] })], workers: [] })
    const first = totals.figures(entities, "cluster")
    const whole = since(undefined, first, "c")
    assert.strictEqual(whole.calls[0]!.calls, 2)
    assert.strictEqual(whole.calls[0]!.env, "c")
    assert.deepStrictEqual(whole.calls[0]!.failures, [["Overdrawn", 1]])
    assert.deepStrictEqual(
      whole.workers.map((w) => w.env),
      ["c"]
    )

    totals.add({ calls: [call(3)], workers: [] })
    const next = since(first, totals.figures(entities, "cluster"), "c")
    assert.strictEqual(next.calls[0]!.calls, 3)
    assert.strictEqual(next.calls[0]!.sum, 6)
    assert.deepStrictEqual(next.calls[0]!.buckets, [3, 0, 0])
    // No new failure: nothing to add.
    assert.deepStrictEqual(next.calls[0]!.failures, [])

    const nothing = since(totals.figures([], "cluster"), totals.figures([], "cluster"), "c")
    assert.strictEqual(nothing.calls[0]!.calls, 0)
    assert.strictEqual(nothing.calls[0]!.min, Number.POSITIVE_INFINITY)
  })

  it("totals that went down are a new process: counted whole", () => {
    const before = new Totals()
    before.add({ calls: [call(10)], workers: [] })
    const after = new Totals()
    after.add({ calls: [call(4)], workers: [] })
    assert.strictEqual(since(before.figures([], "cluster"), after.figures([], "cluster"), "c").calls[0]!.calls, 4)
  })
})

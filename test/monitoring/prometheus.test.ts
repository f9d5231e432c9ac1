/**
 * The Prometheus text of a monitored Corps parses line by line and holds
 * its figures: counters, the latency histogram, gauges, failures by tag.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import { Corps, Monitoring } from "../../src/index.ts"
import { Calc, CalcLive, TallyLive } from "../fixtures/monitored.ts"

/** One sample line: `name{labels} value`. */
const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$/
const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

interface Sample {
  readonly name: string
  readonly labels: Record<string, string>
  readonly value: number
}

/** Parses the exposition text; fails the test on any line that is neither a comment nor a sample. */
const parse = (text: string): { samples: Array<Sample>; types: Map<string, string> } => {
  const samples: Array<Sample> = []
  const types = new Map<string, string>()
  for (const line of text.split("\n")) {
    if (line === "") continue
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ")
      types.set(name!, type!)
      continue
    }
    if (line.startsWith("#")) continue
    const match = sampleLine.exec(line)
    assert.isNotNull(match, `not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (match![3] ?? "").matchAll(labelPair)) labels[key!] = value!
    samples.push({ name: match![1]!, labels, value: Number(match![4]!.replace("+Inf", "Infinity")) })
  }
  return { samples, types }
}

const value = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string>): number | undefined =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value

describe("Monitoring.prometheus", () => {
  it.live("the text parses and holds calls, failures, latency and gauges", () =>
    Effect.gen(function* () {
      const calc = yield* Calc
      for (let i = 0; i < 5; i++) yield* calc.add({ a: i, b: i })
      yield* Effect.exit(calc.boom({ n: 1 }))
      yield* calc.viaTally({ key: "x" })
      yield* Metric.update(Metric.counter("app_orders_total"), 2)
      const { samples, types } = parse(yield* Monitoring.prometheus)
      const add = { corps: "shop", worker: "Calc", method: "add", env: "local", caller: "local" }
      assert.strictEqual(types.get("corps_calls_total"), "counter")
      assert.strictEqual(types.get("corps_call_duration_ms"), "histogram")
      assert.strictEqual(types.get("corps_calls_in_flight"), "gauge")
      assert.strictEqual(value(samples, "corps_calls_total", add), 5)
      // FastPath calls are timed once per 10 ms tick: at least the first of these 5.
      const timed = value(samples, "corps_call_duration_ms_count", add)!
      assert.isTrue(timed >= 1 && timed <= 5, `${timed} timed`)
      assert.strictEqual(value(samples, "corps_call_duration_ms_bucket", { ...add, le: "+Inf" }), timed)
      assert.isAbove(value(samples, "corps_call_duration_ms_sum", add)!, 0)
      assert.strictEqual(value(samples, "corps_calls_in_flight", add), 0)
      assert.strictEqual(
        value(samples, "corps_call_failures_total", { ...add, method: "boom", error: "Oops" }),
        1,
        "failures by tag"
      )
      assert.strictEqual(value(samples, "corps_worker_instances", { worker: "Tally", env: "local" }), 1)
      assert.strictEqual(value(samples, "corps_worker_mailbox_depth", { worker: "Tally", env: "local" }), 0)
      // The program's own metrics share the text.
      assert.strictEqual(value(samples, "app_orders_total", {}), 2)
    }).pipe(
      Effect.provide(
        Corps.layer([CalcLive, TallyLive], { name: "shop", placement: {} }).pipe(
          Layer.provideMerge(Monitoring.layer()),
          // A registry of this test's own, seen by the Corps and the program alike.
          Layer.provideMerge(Layer.sync(Metric.MetricRegistry, () => new Map()))
        )
      ),
      Effect.scoped
    )
  )
})

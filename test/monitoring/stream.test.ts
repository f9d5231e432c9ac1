/**
 * A stream call is one call: counted once when the stream ends, in flight
 * while it runs, locally and in a thread Env.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Metric, Stream } from "effect"
import { Corps, Monitoring, type Placement } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { Probe, ProbeLive } from "../fixtures/envs.ts"

const fixtures = new URL("../fixtures/envs.ts", import.meta.url).href

describe("Monitoring streams", () => {
  const placements: Record<string, Placement.Placement> = {
    local: {},
    thread: { envs: { pool: { kind: "thread", count: 1, spare: false } }, default: "pool" }
  }
  for (const [kind, placement] of Object.entries(placements)) {
    it.live(`${kind}: a stream call counts once, when it ends`, () => {
      const registry = new Map()
      const state = (id: string) =>
        Metric.snapshotUnsafe(Context.make(Metric.MetricRegistry, registry)).find(
          (s) => s.id === id && (s.attributes as any)?.method === "count" && (s.attributes as any)?.caller === "local"
        )?.state as any
      return Effect.gen(function* () {
        const probe = yield* Probe
        const values = yield* Stream.runCollect(
          probe.count({ n: 3 }).pipe(
            Stream.tap(() =>
              Effect.sync(() => {
                // While the stream runs, its call is in flight and not yet counted.
                assert.strictEqual(state("corps_calls_in_flight").value, 1)
                assert.strictEqual(state("corps_calls_total").count, 0)
              })
            )
          )
        )
        assert.deepStrictEqual([...values], [1, 2, 3])
        assert.strictEqual(state("corps_calls_total").count, 1)
        assert.strictEqual(state("corps_calls_in_flight").value, 0)
      }).pipe(
        Effect.provide(
          Corps.layer([ProbeLive], { placement, module: fixtures }).pipe(
            Layer.provide(NodeEnv.layer),
            Layer.provide(Monitoring.layer()),
            Layer.provide(Layer.succeed(Metric.MetricRegistry, registry))
          )
        ),
        Effect.scoped
      )
    })
  }
})

/**
 * A cluster Conc under `onDefect: "restart"` (src/cluster/internal/Entities.ts)
 * with a `concurrent` method and a stream: concurrent first calls share one
 * build, and a stream that dies retires its incarnation like a call does.
 * The whole cluster in memory (TestRunner).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Schema, Stream } from "effect"
import { TestRunner } from "effect/cluster"
import { layerEntity, makeTargets } from "../../src/cluster/internal/Entities.ts"
import { Worker } from "../../src/index.ts"

class Gauge extends Worker.Service<Gauge>()("RestartingGauge", {
  /** Declared concurrent: runs beside the mailbox. */
  peek: { success: Schema.Number },
  ticks: { payload: { dieAfter: Schema.Number }, success: Schema.Number, stream: true }
}) {}

/** Builds and finalizers of every incarnation, and a gate that holds each build until opened. */
const log = { builds: 0, finalized: 0, gate: Deferred.makeUnsafe<void>() }

const GaugeLive = Gauge.conc(
  () =>
    Effect.gen(function* () {
      yield* Deferred.await(log.gate)
      const incarnation = ++log.builds
      yield* Effect.addFinalizer(() => Effect.sync(() => log.finalized++))
      return {
        peek: () => incarnation,
        ticks: ({ dieAfter }) =>
          Stream.range(1, dieAfter + 1).pipe(
            Stream.map((n) => {
              if (n > dieAfter) throw new Error("ticks died")
              return n
            })
          )
      }
    }),
  { onDefect: "restart", concurrent: ["peek"] }
)

const run = <A, E>(effect: Effect.Effect<A, E, any>) =>
  Effect.scoped(effect).pipe(
    Effect.provide(layerEntity(GaugeLive).pipe(Layer.provideMerge(TestRunner.layer)))
  ) as Effect.Effect<A, E>

describe("cluster Conc with onDefect: restart", () => {
  it.live("concurrent first calls share one build; a stream that dies retires its incarnation", () =>
    run(
      Effect.gen(function* () {
        const gauge = (yield* makeTargets(Gauge, "conc"))("g")
        // Ten concurrent calls to a concurrent method while the first build is held at its gate.
        const peeks = yield* Effect.forkChild(
          Effect.forEach(Array.from({ length: 10 }), () => gauge.call("peek", undefined), { concurrency: "unbounded" })
        )
        // Let them all reach the entity before the build may finish (a race without the lock).
        yield* Effect.sleep("100 millis")
        yield* Deferred.succeed(log.gate, undefined)
        const seen = yield* Fiber.join(peeks)
        assert.deepStrictEqual(
          seen,
          Array.from({ length: 10 }, () => 1)
        )
        assert.strictEqual(log.builds, 1)

        // The stream dies after two elements: its incarnation is retired (finalizer ran), the next call rebuilds.
        const ticks = yield* Effect.exit(Stream.runCollect(gauge.stream("ticks", { dieAfter: 2 })))
        assert.isTrue(Exit.isFailure(ticks))
        assert.strictEqual(log.finalized, 1)
        assert.strictEqual(yield* gauge.call("peek", undefined), 2)
        assert.strictEqual(log.builds, 2)
      })
    )
  )
})

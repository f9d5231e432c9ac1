/**
 * The `load` sample an Env answers over its link (src/node/load.ts): what
 * autoscaling decides from and monitoring shows. Real threads and processes.
 */
import { threadId } from "node:worker_threads"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Supervisor } from "../../src/internal/supervisor.ts"
import * as Wire from "../../src/internal/wire.ts"
import * as EnvPool from "../../src/node/EnvPool.ts"

const health = new URL("../fixtures/health.ts", import.meta.url).href

const makePool = (kind: "thread" | "process") =>
  EnvPool.make({
    kind,
    size: 2,
    corps: "load-test",
    envName: "pool",
    module: health,
    init: (index) => ({
      corps: "load-test",
      module: health,
      envName: "pool",
      index,
      workers: ["Sick"],
      hosts: {},
      handleCorps: {}
    }),
    dispatch: () => Effect.succeed(Wire.interrupted),
    health: { spare: false },
    supervisor: new Supervisor("load-test", undefined, "stop")
  })

describe("EnvPool.load", () => {
  for (const kind of ["thread", "process"] as const) {
    it.live(`${kind}: a busy Env reports a high utilisation, an idle one a low one, and where it runs`, () =>
      Effect.gen(function* () {
        const pool = yield* makePool(kind)
        // Start both windows now.
        yield* pool.load(0)
        yield* pool.load(1)
        // Slot 0 spins for 300 ms; slot 1 only answers a call.
        yield* pool.client(0).call({ worker: "Sick", key: "", method: "block", payload: { millis: 300 } })
        yield* pool.client(1).call({ worker: "Sick", key: "", method: "square", payload: { n: 2 } })
        const busy = (yield* pool.load(0))!
        const idle = (yield* pool.load(1))!
        // The last sample stays readable without taking a new one (monitoring reads what the scaler saw).
        assert.deepStrictEqual(pool.lastLoad(0), busy)
        assert.deepStrictEqual(pool.lastLoad(1), idle)
        assert.isAbove(busy.utilization, 0.5)
        assert.isAtLeast(busy.windowMillis, 300)
        assert.isBelow(idle.utilization, busy.utilization)
        assert.isAbove(busy.heapUsed, 0)
        assert.isAtLeast(busy.heapTotal, busy.heapUsed)
        if (kind === "thread") {
          assert.strictEqual(busy.pid, process.pid)
          assert.notStrictEqual(busy.threadId, threadId)
          assert.notStrictEqual(busy.threadId, idle.threadId)
        } else {
          assert.notStrictEqual(busy.pid, process.pid)
          assert.notStrictEqual(busy.pid, idle.pid)
        }
        // A slot with no Env.
        assert.isUndefined(yield* pool.load(7))
      }).pipe(Effect.scoped)
    )
  }
})

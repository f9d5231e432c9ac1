/**
 * The Snapshot builder with local Corps only: the tree of nested Corps
 * (`Corps.make` private members and a `Corps.layer` built under another),
 * per-method figures from the metric registry, the bounded ring of recent
 * events, and the histogram quantiles.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schedule, Schema } from "effect"
import { Corps, Monitoring, Worker } from "../../src/index.ts"
import { Monitor, quantile, RECENT_EVENTS, snapshot } from "../../src/monitoring/Monitor.ts"
import { Snapshot } from "../../src/monitoring/Snapshot.ts"
import { Ledger, LedgerLive } from "../fixtures/workers.ts"

class Branch extends Worker.Service<Branch>()("Branch", {
  deposit: { payload: { amount: Schema.Number }, success: Schema.Number }
}) {}

const BranchLive = Corps.make(
  Branch.func(
    Effect.gen(function* () {
      const ledger = yield* Ledger
      return { deposit: ({ amount }) => Effect.orDie(ledger.record({ amount })) }
    })
  ),
  { members: [LedgerLive] }
)

class Audit extends Worker.Service<Audit>()("Audit", { check: { success: Schema.Boolean } }) {}
const AuditLive = Audit.func({ check: () => true })

/** An outer Corps with a Corps.make member, and an inner Corps.layer built under it. */
const tree = Corps.layer([AuditLive], { name: "inner" }).pipe(
  Layer.provideMerge(Corps.layer([BranchLive], { name: "bank" })),
  Layer.provideMerge(Monitoring.layer()),
  Layer.provideMerge(Monitor.layer)
)

describe("Monitor", () => {
  it.live("the Corps tree: private members as a child Corps, a nested Corps.layer as another, with their figures", () =>
    Effect.gen(function* () {
      const branch = yield* Branch
      const audit = yield* Audit
      yield* branch.deposit({ amount: 10 })
      yield* branch.deposit({ amount: 5 })
      yield* audit.check()
      const snap = yield* snapshot
      // It is what the JSON carries.
      Schema.decodeUnknownSync(Snapshot)(Schema.encodeSync(Snapshot)(snap))
      const bank = snap.corps
      assert.strictEqual(bank.name, "bank")
      assert.deepStrictEqual(
        bank.workers.map((w) => [w.name, w.kind, w.env]),
        [["Branch", "corps", "local"]]
      )
      const deposit = bank.workers[0]!.methods.find((m) => m.method === "deposit")!
      assert.strictEqual(deposit.calls, 2)
      assert.deepStrictEqual(
        bank.children.map((c) => c.name),
        ["bank/Branch", "inner"]
      )
      const [privateCorps, inner] = bank.children
      assert.deepStrictEqual(
        privateCorps!.workers.map((w) => [w.name, w.kind, w.env]),
        [["Ledger", "conc", "local"]]
      )
      // Branch's calls to its private Ledger are counted under the private Corps' name.
      const record = privateCorps!.workers[0]!.methods.find((m) => m.method === "record")!
      assert.strictEqual(record.calls, 2)
      assert.deepStrictEqual(
        inner!.workers.map((w) => [w.name, w.methods[0]!.calls]),
        [["Audit", 1]]
      )
    }).pipe(Effect.provide(tree), Effect.scoped)
  )

  it.live(`keeps the ${RECENT_EVENTS} most recent events, oldest first`, () =>
    Effect.gen(function* () {
      const events = yield* Corps.Events
      const corps = (yield* snapshot).corps.id
      for (let i = 0; i < RECENT_EVENTS + 50; i++) {
        yield* events.emit({ _tag: "SpareReady", corps, at: i, env: `e${i}` })
      }
      // The Monitor follows the hub in a fiber of its own: wait until it has seen the last one.
      const snap = yield* snapshot.pipe(
        Effect.repeat({
          schedule: Schedule.spaced("10 millis"),
          until: (s) => s.events.at(-1)?.at === RECENT_EVENTS + 49
        })
      )
      assert.strictEqual(snap.events.length, RECENT_EVENTS)
      assert.strictEqual(snap.events[0]!.at, 50)
    }).pipe(Effect.provide(tree), Effect.scoped)
  )

  it("quantile: interpolates within the bucket, capped by the largest value; 0 without calls", () => {
    // Cumulative buckets, as Metric.snapshot gives them: 1 value <= 1, 3 <= 2, 4 <= 5; 5 in all (one above 5).
    const histogram = {
      buckets: [
        [1, 1],
        [2, 3],
        [5, 4]
      ] as const,
      count: 5,
      max: 10
    }
    assert.strictEqual(quantile(histogram, 0.2), 1)
    assert.strictEqual(quantile(histogram, 0.5), 1.75)
    assert.strictEqual(quantile(histogram, 0.8), 5)
    assert.strictEqual(quantile(histogram, 0.99), 10)
    assert.strictEqual(quantile({ buckets: [[1, 2]], count: 2, max: 0.4 }, 0.5), 0.4)
    assert.strictEqual(quantile({ buckets: [], count: 0, max: 0 }, 0.5), 0)
  })
})

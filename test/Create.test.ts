/**
 * Creating instances with an init and a location (`Worker.create`, issue 11
 * item 1): typed refusals before anything is sent, start failures, explicit
 * close and Scope-bound lifetime, perEnv over threads, handles that travel.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, PubSub, Schema, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { ClusterEnv } from "../src/cluster/index.ts"
import { Corps, type Placement, Worker } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"
import { journal, Resource, ResourceLive, User, UserLive } from "./fixtures/created.ts"

const fixtures = new URL("./fixtures/created.ts", import.meta.url).href

/** A created Worker that passivates when idle (a minute), counting its builds. */
class Lease extends Worker.Service<Lease>()(
  "Lease",
  { holder: { success: Schema.String } },
  { init: Schema.Struct({ holder: Schema.String }) }
) {}
const leaseBuilds = { n: 0 }
const LeaseLive = Lease.conc(
  (_key, { holder }) =>
    Effect.sync(() => {
      leaseBuilds.n++
      return { holder: () => holder }
    }),
  { passivateAfter: "1 minute" }
)
const local = Corps.layer([ResourceLive, UserLive])

const failureTag = <A, E>(exit: Exit.Exit<A, E>): string | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" ? (error.value as { _tag: string })._tag : "defect"
}

describe("Worker.create (local)", () => {
  it.effect("builds at create with its init; calls reach it", () =>
    Effect.gen(function* () {
      const r = yield* Resource.create({ label: "a" })
      assert.strictEqual(yield* r.label(), "a")
      assert.isTrue(r.key.startsWith("$c:"))
      const many = yield* Resource.create({ label: "b" }, { num: 3 })
      assert.strictEqual(new Set(many.map((h) => h.key)).size, 3)
      assert.deepStrictEqual(yield* Effect.forEach(many, (h) => h.label()), ["b", "b", "b"])
    }).pipe(Effect.provide(local), Effect.scoped)
  )

  it.effect("an init that fails its Schema is InvalidInit, before anything is built", () =>
    Effect.gen(function* () {
      const before = journal.length
      const exit = yield* Effect.exit(Resource.create({ label: "" }))
      assert.strictEqual(failureTag(exit), "InvalidInit")
      assert.strictEqual(journal.length, before)
    }).pipe(Effect.provide(local), Effect.scoped)
  )

  it.effect("a failing builder is InstanceStartFailed at create", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Resource.create({ label: "x", fail: true }))
      assert.strictEqual(failureTag(exit), "InstanceStartFailed")
      if (Exit.isFailure(exit))
        assert.include(String(Exit.findErrorOption(exit).pipe((o) => (o as any).value.message)), "cannot open x")
    }).pipe(Effect.provide(local), Effect.scoped)
  )

  it.effect("a wrong location is InvalidLocation naming what exists", () =>
    Effect.gen(function* () {
      const wrongEnv = yield* Effect.exit(Resource.create({ label: "a" }, { where: { env: "gpu", index: 0 } }))
      assert.strictEqual(failureTag(wrongEnv), "InvalidLocation")
      if (Exit.isFailure(wrongEnv)) assert.include((Exit.findErrorOption(wrongEnv) as any).value.message, 'Env "local"')
      const wrongIndex = yield* Effect.exit(Resource.create({ label: "a" }, { where: { env: "local", index: 1 } }))
      assert.strictEqual(failureTag(wrongIndex), "InvalidLocation")
      const badNum = yield* Effect.exit(Resource.create({ label: "a" }, { num: 0 }))
      assert.strictEqual(failureTag(badNum), "InvalidLocation")
      const ok = yield* Resource.create({ label: "slot" }, { where: { env: "local", index: 0 } })
      assert.strictEqual(yield* ok.label(), "slot")
    }).pipe(Effect.provide(local), Effect.scoped)
  )

  it.effect("close runs its finalizers; later calls fail with InstanceClosed; closing twice is harmless", () =>
    Effect.gen(function* () {
      const r = yield* Resource.create({ label: "closable" })
      yield* Worker.close(r)
      assert.include(journal, "close closable")
      assert.strictEqual(failureTag(yield* Effect.exit(r.label())), "InstanceClosed")
      assert.strictEqual(failureTag(yield* Effect.exit(Stream.runCollect(r.letters()))), "InstanceClosed")
      // Met by another Worker's handler and let through, it is that Worker's DownstreamFailed (the same object, in one runtime).
      const user = yield* User
      const relayed = yield* Effect.exit(user.borrow({ resource: r }))
      assert.strictEqual(failureTag(relayed), "DownstreamFailed")
      if (Exit.isFailure(relayed))
        assert.strictEqual((Exit.findErrorOption(relayed) as any).value.error._tag, "InstanceClosed")
      yield* Worker.close(r)
      assert.strictEqual(journal.filter((line) => line === "close closable").length, 1)
    }).pipe(Effect.provide(local), Effect.scoped)
  )

  it.effect("a closed instance stays closed after a passivation: InstanceClosed, not a start failure", () =>
    Effect.gen(function* () {
      const hub = yield* Corps.Events
      const events = yield* PubSub.subscribe(hub.pubsub)
      const lease = yield* Lease.create({ holder: "h" })
      assert.strictEqual(yield* lease.holder(), "h")
      yield* Worker.close(lease)
      // The idle (closed) instance is passivated; the next call would rebuild it from the init its key carries.
      yield* Effect.andThen(TestClock.adjust("2 minutes"), Effect.yieldNow)
      const event = yield* PubSub.take(events)
      assert.deepStrictEqual([event._tag, (event as { key?: string }).key], ["InstancePassivated", lease.key])
      const exit = yield* Effect.exit(lease.holder())
      assert.strictEqual(failureTag(exit), "InstanceClosed")
      assert.strictEqual(leaseBuilds.n, 1)
    }).pipe(Effect.provide(Corps.layer([LeaseLive])), Effect.scoped)
  )

  it.effect("the creator's Scope bounds the instance's life", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const r = yield* Resource.create({ label: "scoped" }).pipe(Scope.provide(scope))
      assert.notInclude(journal, "close scoped")
      yield* Scope.close(scope, Exit.void)
      assert.include(journal, "close scoped")
      assert.strictEqual(failureTag(yield* Effect.exit(r.label())), "InstanceClosed")
    }).pipe(Effect.provide(local), Effect.scoped)
  )

  it.effect("a keyed instance of a contract with an init cannot be built", () =>
    Effect.gen(function* () {
      const r = yield* Resource.instance("plain-key")
      assert.strictEqual(failureTag(yield* Effect.exit(r.label())), "InstanceStartFailed")
    }).pipe(Effect.provide(local), Effect.scoped)
  )
})

for (const kind of ["thread", "process"] as const) {
  describe(`Worker.create (${kind})`, () => {
    const placement = {
      envs: { pool: { kind, count: 3 }, users: { kind, count: 1 } },
      workers: { Resource: "pool", User: "users" }
    } satisfies Placement.Placement
    const layer = Corps.layer([ResourceLive, UserLive], { module: fixtures, placement }).pipe(
      Layer.provide(NodeEnv.layer)
    )

    it.live(
      "perEnv puts one in each slot, a slot location is honoured, handles travel to another Env, close runs finalizers there",
      () =>
        Effect.gen(function* () {
          const perEnv = yield* Resource.create({ label: "p" }, { where: "perEnv" })
          assert.strictEqual(perEnv.length, 3)
          const places = yield* Effect.forEach(perEnv, (h) => h.where())
          assert.strictEqual(new Set(places.map((p) => `${p.pid}/${p.thread}`)).size, 3)
          const pinned = yield* Resource.create({ label: "s2" }, { where: { env: "pool", index: 2 } })
          assert.deepStrictEqual(yield* pinned.where(), places[2])
          const wrong = yield* Effect.exit(Resource.create({ label: "a" }, { where: { env: "pool", index: 3 } }))
          assert.strictEqual(failureTag(wrong), "InvalidLocation")
          const auto = yield* Resource.create({ label: "auto" }, { num: 3 })
          const autoPlaces = yield* Effect.forEach(auto, (h) => h.where())
          assert.strictEqual(new Set(autoPlaces.map((p) => `${p.pid}/${p.thread}`)).size, 3)
          const user = yield* User
          assert.strictEqual(yield* user.borrow({ resource: pinned }), "used s2")
          yield* Worker.close(pinned)
          const seen = yield* perEnv[2]!.journal()
          assert.include(seen, "close s2")
          assert.strictEqual(failureTag(yield* Effect.exit(Stream.runCollect(pinned.letters()))), "InstanceClosed")
          assert.strictEqual(failureTag(yield* Effect.exit(user.borrow({ resource: pinned }))), "DownstreamFailed")
          const failed = yield* Effect.exit(Resource.create({ label: "f", fail: true }, { where: "perEnv" }))
          assert.strictEqual(failureTag(failed), "InstanceStartFailed")
        }).pipe(Effect.provide(layer), Effect.scoped),
      60_000
    )
  })
}

describe("Worker.create (cluster, local storage)", () => {
  const layer = Corps.layer([ResourceLive, UserLive], {
    module: fixtures,
    placement: { envs: { c: { kind: "cluster", storage: "local" } }, default: "c" }
  }).pipe(Layer.provide(ClusterEnv.layer()))

  it.live(
    "auto only; the created entity is built with its init, a failing builder is InstanceStartFailed, its handle travels, close ends it",
    () =>
      Effect.gen(function* () {
        const r = yield* Resource.create({ label: "entity" })
        assert.strictEqual([...(yield* Stream.runCollect(r.letters()))].join(""), "entity")
        assert.strictEqual(yield* r.label(), "entity")
        const slot = yield* Effect.exit(Resource.create({ label: "a" }, { where: { env: "c", index: 0 } }))
        assert.strictEqual(failureTag(slot), "InvalidLocation")
        const perEnv = yield* Effect.exit(Resource.create({ label: "a" }, { where: "perEnv" }))
        assert.strictEqual(failureTag(perEnv), "InvalidLocation")
        // A failing builder ends create with InstanceStartFailed (the cluster would retry the build for ever).
        const failed = yield* Effect.exit(Resource.create({ label: "f", fail: true }))
        assert.strictEqual(failureTag(failed), "InstanceStartFailed")
        if (Exit.isFailure(failed)) assert.include((Exit.findErrorOption(failed) as any).value.reason, "cannot open f")
        const user = yield* User
        assert.strictEqual(yield* user.borrow({ resource: r }), "used entity")
        yield* Worker.close(r)
        // The closed instance's refusal arrives as it is; relayed by another Worker, it is DownstreamFailed.
        assert.strictEqual(failureTag(yield* Effect.exit(r.label())), "InstanceClosed")
        // A stream method refuses the same way (not a defect of the stream machinery).
        assert.strictEqual(failureTag(yield* Effect.exit(Stream.runCollect(r.letters()))), "InstanceClosed")
        const relayed = yield* Effect.exit(user.borrow({ resource: r }))
        assert.strictEqual(failureTag(relayed), "DownstreamFailed")
        if (Exit.isFailure(relayed))
          assert.strictEqual((Exit.findErrorOption(relayed) as any).value.error._tag, "InstanceClosed")
        // The runner serves on: a keyed instance of a contract with an init fails to start, and a new create works.
        const keyed = yield* Resource.instance("plain-key")
        assert.strictEqual(failureTag(yield* Effect.exit(keyed.label())), "InstanceStartFailed")
        const again = yield* Resource.create({ label: "again" })
        assert.strictEqual(yield* again.label(), "again")
      }).pipe(Effect.provide(layer), Effect.scoped),
    60_000
  )
})

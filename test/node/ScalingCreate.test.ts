/**
 * `Worker.create` in a scaling Env (count `{ min, max }`): created instances
 * take the Env's `min` slots, which are never drained, and the caller's
 * directory puts each one in the slot its id names — from the caller and
 * from inside an Env (a client creating its private servers in its builder)
 * — while the Env grows under the calls (waited for on the event stream).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, PubSub } from "effect"
import { Corps, type Placement } from "../../src/index.ts"
import { slotOf } from "../../src/internal/create.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { Resource, ResourceLive, SeedClient, SeedClientLive, SeedServer, SeedServerLive } from "../fixtures/created.ts"

const fixtures = new URL("../fixtures/created.ts", import.meta.url).href
const placeOf = (where: { readonly pid: number; readonly thread: number }) => `${where.pid}/${where.thread}`

const failureTag = <A, E>(exit: Exit.Exit<A, E>): string | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" ? (error.value as { _tag: string })._tag : "defect"
}

for (const kind of ["thread", "process"] as const) {
  describe(`Worker.create in a scaling ${kind} Env`, () => {
    const placement = {
      envs: {
        pool: {
          kind,
          count: { min: 3, max: 5 },
          // Fast enough that the load below grows the Env while created instances live.
          scaling: { sampleMillis: 20, upAfterMillis: 40, downAfterMillis: 300, inFlightPerEnv: 2 }
        }
      },
      default: "pool"
    } satisfies Placement.Placement
    const layer = Corps.layer([ResourceLive, SeedServerLive, SeedClientLive], { module: fixtures, placement }).pipe(
      Layer.provide(NodeEnv.layer)
    )

    it.live(
      "a slot location is honoured, perEnv and auto use the min slots, and so do creates made inside an Env",
      () =>
        Effect.gen(function* () {
          const hub = yield* Corps.Events
          const events = yield* PubSub.subscribe(hub.pubsub)
          // One per slot, by explicit location: three different Envs.
          const bySlot = yield* Effect.forEach([0, 1, 2], (index) =>
            Resource.create({ label: `s${index}` }, { where: { env: "pool", index } })
          )
          const places = yield* Effect.forEach(bySlot, (h) => Effect.map(h.where(), placeOf))
          assert.strictEqual(new Set(places).size, 3)
          // Several at one slot all land there (a least-loaded placement would spread them).
          const pinned = yield* Resource.create({ label: "pinned" }, { where: { env: "pool", index: 2 }, num: 3 })
          for (const h of pinned) assert.strictEqual(placeOf(yield* h.where()), places[2])
          const perEnv = yield* Resource.create({ label: "p" }, { where: "perEnv" })
          assert.deepStrictEqual(yield* Effect.forEach(perEnv, (h) => Effect.map(h.where(), placeOf)), places)
          const auto = yield* Resource.create({ label: "auto" }, { num: 4 })
          for (const h of auto) assert.strictEqual(placeOf(yield* h.where()), places[slotOf(h.key)!])
          // A slot above min may be drained: it is not a location.
          const above = yield* Effect.exit(Resource.create({ label: "x" }, { where: { env: "pool", index: 3 } }))
          assert.strictEqual(failureTag(above), "InvalidLocation")

          // Twelve callers keep the four auto instances' Envs busy (CPU): the Env grows.
          const load = yield* Effect.forkChild(
            Effect.forEach(
              Array.from({ length: 12 }, (_, i) => auto[i % auto.length]!),
              (h) => Effect.forever(h.busy({ millis: 5 })),
              { concurrency: "unbounded", discard: true }
            )
          )
          for (;;) {
            const event = yield* PubSub.take(events)
            if (event._tag === "EnvStarted" && event.index >= 3) break
          }
          // A new, empty slot is now the least loaded: created instances still go to the slot their id names.
          const late = yield* Resource.create({ label: "late" }, { num: 3 })
          for (const h of late) assert.strictEqual(placeOf(yield* h.where()), places[slotOf(h.key)!])

          // A client at slot 1 creates 3 private servers per slot in its builder (through the caller's directory).
          const client = yield* SeedClient.create(
            { name: "c", firstPrivateId: 100, globals: [] },
            { where: { env: "pool", index: 1 } }
          )
          assert.strictEqual(placeOf(yield* client.where()), places[1])
          const privatePlaces = (yield* client.privatePlaces()).map(placeOf)
          assert.deepStrictEqual(
            privatePlaces,
            [0, 1, 2].flatMap(() => places)
          )
          const tally = yield* client.run({ rounds: 20 })
          assert.deepStrictEqual(tally.privates, { requests: 180, errors: 0, wrong: 0 })
          // Still where they were created, whatever the Env did meanwhile.
          assert.deepStrictEqual((yield* client.privatePlaces()).map(placeOf), privatePlaces)
          yield* Fiber.interrupt(load)
          const global = yield* SeedServer.create({ id: 7 }, { where: { env: "pool", index: 0 } })
          assert.strictEqual(placeOf(yield* global.where()), places[0])
        }).pipe(Effect.provide(layer), Effect.scoped),
      90_000
    )
  })
}

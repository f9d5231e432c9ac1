/**
 * Passivation in thread and process Envs, for real: instances with
 * `passivateAfter` are retired inside the Env and the caller hears of it on
 * `Corps.events`; the next call rebuilds them (a plain counter starts from 0
 * again, a persisted one goes on). The `passivate` control call drains an
 * Env's idle instances and answers the keys still live.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, PubSub } from "effect"
import type * as CorpsEvent from "../../src/CorpsEvent.ts"
import { Corps, type Placement } from "../../src/index.ts"
import { makeHub } from "../../src/internal/events.ts"
import { Supervisor } from "../../src/internal/supervisor.ts"
import type * as Wire from "../../src/internal/wire.ts"
import * as EnvPool from "../../src/node/EnvPool.ts"
import { CONTROL } from "../../src/node/envInit.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { Kept, KeptLive, Sleepy, SleepyLive } from "../fixtures/passivateWorkers.ts"

const fixtures = new URL("../fixtures/passivateWorkers.ts", import.meta.url).href

type Passivated = Extract<CorpsEvent.CorpsEvent, { _tag: "InstancePassivated" }>

/** The next InstancePassivated events from `events`, until one of each `wanted` Worker/key. */
const passivations = (events: PubSub.Subscription<CorpsEvent.CorpsEvent>, wanted: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const seen = new Map<string, Passivated>()
    while (!wanted.every((id) => seen.has(id))) {
      const event = yield* PubSub.take(events)
      if (event._tag === "InstancePassivated") seen.set(`${event.worker}/${event.key}`, event)
    }
    return seen
  }).pipe(Effect.timeout("30 seconds"))

describe("passivateAfter in Envs", () => {
  for (const kind of ["thread", "process"] as const) {
    it.live(`${kind}: idle instances are passivated in the Env, reported to the caller, rebuilt by the next call`, () =>
      Effect.gen(function* () {
        const hub = yield* Corps.Events
        const events = yield* PubSub.subscribe(hub.pubsub)
        const sleepy = yield* Sleepy
        const kept = yield* Kept
        assert.strictEqual(yield* sleepy.instance("a").add({ by: 5 }), 5)
        assert.strictEqual(yield* kept.instance("a").add({ by: 5 }), 5)
        const seen = yield* passivations(events, ["Sleepy/a", "Kept/a"])
        const event = seen.get("Sleepy/a")!
        assert.strictEqual(event.env, "pool#0")
        assert.strictEqual(event.idleMillis, 200)
        assert.strictEqual(event.corps, seen.get("Kept/a")!.corps)
        // A plain counter starts again; a persisted one resumes from its store.
        assert.strictEqual(yield* sleepy.instance("a").add({ by: 1 }), 1)
        assert.strictEqual(yield* kept.instance("a").add({ by: 1 }), 6)
        const counts = yield* sleepy.instance("a").counts()
        assert.strictEqual(counts.finalized, 1)
        assert.strictEqual(counts.builds, 2)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Corps.layer([SleepyLive, KeptLive], {
            module: fixtures,
            placement: { envs: { pool: { kind, count: 1 } }, default: "pool" } satisfies Placement.Placement
          }).pipe(Layer.provide(NodeEnv.layer))
        )
      )
    )
  }
})

describe("the passivate control call", () => {
  for (const kind of ["thread", "process"] as const) {
    it.live(`${kind}: passivates the idle instances, answers the live keys per Worker, reports each`, () =>
      Effect.gen(function* () {
        const hub = yield* makeHub
        const events = yield* PubSub.subscribe(hub.pubsub)
        const pool = yield* EnvPool.make({
          kind,
          size: 1,
          corps: "drain-test",
          envName: "drain",
          module: fixtures,
          init: (index) => ({
            corps: "drain-test",
            module: fixtures,
            envName: "drain",
            index,
            workers: ["Drained"],
            hosts: {},
            handleCorps: {}
          }),
          dispatch: () => Effect.die("no call goes back to the caller here") as Effect.Effect<Wire.Exit>,
          health: { spare: false },
          events: hub,
          supervisor: new Supervisor("drain-test", undefined, "stop")
        })
        const client = pool.client(0)
        const call = (key: string, method: string, payload: unknown = undefined) =>
          Effect.map(client.call({ worker: "Drained", key, method, payload }), (exit: Wire.Exit) => {
            assert.strictEqual(exit._tag, "Success", JSON.stringify(exit))
            return exit._tag === "Success" ? exit.value : undefined
          })
        const passivate = (workers: ReadonlyArray<string> | null) =>
          Effect.map(client.call({ worker: CONTROL, key: "", method: "passivate", payload: workers }), (exit) => {
            assert.strictEqual(exit._tag, "Success")
            return exit._tag === "Success" ? exit.value : undefined
          })
        assert.strictEqual(yield* call("a", "add", { by: 2 }), 2)
        assert.strictEqual(yield* call("b", "add", { by: 3 }), 3)
        const held = yield* Effect.forkChild(call("b", "hold"))
        yield* call("b", "holding")
        assert.deepStrictEqual(yield* passivate(["Other"]), {})
        assert.deepStrictEqual(yield* passivate(null), { Drained: ["b"] })
        const seen = yield* passivations(events, ["Drained/a"])
        assert.strictEqual(seen.get("Drained/a")!.env, "drain#0")
        assert.isUndefined(seen.get("Drained/a")!.idleMillis)
        // "a" starts again from 0; "b" kept its state.
        assert.strictEqual(yield* call("a", "add", { by: 1 }), 1)
        yield* call("b", "release")
        yield* Fiber.join(held)
        assert.strictEqual(yield* call("b", "add", { by: 1 }), 4)
        assert.deepStrictEqual(yield* passivate(["Drained"]), { Drained: [] })
      }).pipe(Effect.scoped)
    )
  }
})

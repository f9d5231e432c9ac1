/**
 * Issue 11: typed downstream and start errors, readable defects,
 * self-handles and extended contracts — locally and across thread and
 * process Envs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schedule, Schema } from "effect"
import {
  CallError,
  CallLost,
  CorpsClosed,
  DownstreamFailed,
  InstanceStartFailed,
  WorkerDefect
} from "../src/CorpsError.ts"
import { Corps, type Placement, Worker } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"
import {
  Back,
  BackLive,
  Fragile,
  FragileLive,
  Front,
  FrontLive,
  Middle,
  MiddleLive,
  Node,
  NodeLive
} from "./fixtures/api.ts"
import type { Counter } from "./fixtures/workers.ts"

const fixtures = new URL("./fixtures/api.ts", import.meta.url).href
const roundTrip = (error: CallError) => Schema.decodeUnknownSync(CallError)(Schema.encodeUnknownSync(CallError)(error))

describe("DownstreamFailed", () => {
  it("wraps a CallError with the call that let it through, and flattens nested wrappers", () => {
    const lost = new CallLost({ worker: "C", method: "n", env: "pool#0", reason: "gone", mayHaveRun: true })
    const once = DownstreamFailed.wrap("B", "m", lost)
    const twice = DownstreamFailed.wrap("A", "x", once)
    assert.deepStrictEqual([twice.worker, twice.method, twice.via], ["A", "x", [{ worker: "B", method: "m" }]])
    assert.strictEqual(twice.error, lost)
    assert.strictEqual(
      twice.message,
      "A.x failed because a call it made failed via B.m: C.n was lost with Env pool#0: gone (it may have run)"
    )
    const decoded = roundTrip(twice)
    assert.instanceOf(decoded, DownstreamFailed)
    assert.instanceOf((decoded as DownstreamFailed).error, CallLost)
    assert.deepStrictEqual(decoded, twice)
  })

  it.effect("a local handler that lets a callee's CallError through fails with DownstreamFailed", () => {
    class Tally extends Worker.Service<Tally>()("Tally", { get: { success: Schema.Number } }) {}
    const TallyLive = Tally.conc(Effect.succeed({ get: () => 1 }))
    class Caller extends Worker.Service<Caller>()("Caller", { get: { success: Schema.Number } }) {}
    const CallerLive = Caller.func(
      Effect.gen(function* () {
        const counter = yield* Tally
        // A Conc call failing with one of effect-corps' own errors, let through without orDie.
        return {
          get: () =>
            Effect.gen(function* () {
              yield* counter.get()
              return yield* new CorpsClosed({ corps: "elsewhere" })
            })
        }
      })
    )
    return Effect.gen(function* () {
      const error = yield* Effect.flip((yield* Caller).get())
      assert.instanceOf(error, DownstreamFailed)
      assert.deepStrictEqual(
        error._tag === "DownstreamFailed" ? [error.worker, error.method, error.via, error.error._tag] : [],
        ["Caller", "get", [], "CorpsClosed"]
      )
    }).pipe(Effect.provide(Corps.layer([CallerLive, TallyLive], { placement: {} })))
  })
})

describe("errors across two hops: Front (local) → Middle (thread) → Back (process)", () => {
  const corps = Corps.layer([FrontLive, MiddleLive, BackLive], {
    module: fixtures,
    placement: {
      envs: { t: { kind: "thread", count: 1 }, p: { kind: "process", count: 1 } },
      workers: { Front: "local", Middle: "t", Back: "p" }
    } satisfies Placement.Placement
  }).pipe(Layer.provide(NodeEnv.layer))

  it.live(
    "Back's Env killed: the caller of Front sees DownstreamFailed(Front.crash via Middle.crash, CallLost of Back.crash)",
    () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip((yield* Front).crash())
        assert.instanceOf(error, DownstreamFailed)
        const failed = error as DownstreamFailed
        assert.deepStrictEqual(
          [failed.worker, failed.method, failed.via],
          ["Front", "crash", [{ worker: "Middle", method: "crash" }]]
        )
        assert.instanceOf(failed.error, CallLost)
        const lost = failed.error as CallLost
        assert.deepStrictEqual([lost.worker, lost.method, lost.mayHaveRun], ["Back", "crash", true])
        assert.include(failed.message, "Front.crash failed because a call it made failed via Middle.crash: Back.crash")
        // Encodable and decodable as every CallError.
        assert.deepStrictEqual(roundTrip(failed), failed)
        // Middle alone, from the caller: one hop.
        const direct = yield* Effect.flip((yield* Middle).crash())
        assert.deepStrictEqual(
          direct._tag === "DownstreamFailed" ? [direct.worker, direct.via, direct.error._tag] : [],
          ["Middle", [], "CallLost"]
        )
        // Middle's thread kept serving, and Back's process is started again: calls go through once it is back.
        const echo = (yield* Middle).echo({ text: "still here" }).pipe(
          Effect.retry({
            while: (e) => e._tag === "DownstreamFailed",
            schedule: Schedule.spaced("50 millis"),
            times: 600
          })
        )
        assert.strictEqual(yield* echo, "still here")
      }).pipe(Effect.provide(corps), Effect.scoped),
    60_000
  )

  it.live(
    "a defect carries its name, message and stack across a process Env",
    () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip((yield* Back).boom({ message: "out of range" }))
        assert.instanceOf(error, WorkerDefect)
        const defect = error as WorkerDefect
        assert.deepStrictEqual(
          [defect.worker, defect.method, defect.defectName, defect.defectMessage],
          ["Back", "boom", "RangeError", "out of range"]
        )
        assert.match(defect.defectStack ?? "", /^RangeError: out of range\n\s+at /)
        assert.strictEqual(defect.message, "Back.boom died: RangeError: out of range")
      }).pipe(Effect.provide(corps), Effect.scoped),
    60_000
  )
})

describe("WorkerDefect", () => {
  it("keeps the original value in its own Env and describes any value", () => {
    const original = new TypeError("bad type")
    const defect = WorkerDefect.fromDefect("W", "m", original)
    assert.strictEqual(defect.defect, original)
    assert.deepStrictEqual([defect.defectName, defect.defectMessage], ["TypeError", "bad type"])
    assert.deepStrictEqual(
      [
        WorkerDefect.fromDefect("W", "m", { code: 7 }).defectName,
        WorkerDefect.fromDefect("W", "m", { code: 7 }).defectMessage
      ],
      ["object", '{"code":7}']
    )
    assert.strictEqual(WorkerDefect.fromDefect("W", "m", "plain").message, "W.m died: string: plain")
    const decoded = roundTrip(defect) as WorkerDefect
    assert.deepStrictEqual([decoded.defectName, decoded.defectMessage], ["TypeError", "bad type"])
    assert.strictEqual(decoded.defectStack, original.stack)
  })
})

describe("InstanceStartFailed", () => {
  for (const kind of ["thread", "process"] as const) {
    it.live(
      `${kind}: a builder that dies or fails with a CallError fails that key's calls; other keys are served`,
      () =>
        Effect.gen(function* () {
          const fragile = yield* Fragile
          const bad = yield* Effect.flip(fragile.instance("bad").ping())
          assert.instanceOf(bad, InstanceStartFailed)
          const started = bad as InstanceStartFailed
          assert.deepStrictEqual(
            [started.worker, started.key, started.reason, started.error],
            ["Fragile", "bad", "TypeError: cannot start bad", undefined]
          )
          assert.include(started.stack ?? "", "TypeError: cannot start bad")
          assert.strictEqual(yield* fragile.instance("good").ping(), "pong from good")
          // The builder's own call lost: the typed CallLost is kept.
          const lost = (yield* Effect.flip(fragile.instance("lost").ping())) as InstanceStartFailed
          assert.strictEqual(lost._tag, "InstanceStartFailed")
          assert.deepStrictEqual([lost.key, lost.error?._tag], ["lost", "CallLost"])
          // Not a defect of the Corps: the key is tried again, other keys are served.
          assert.strictEqual((yield* Effect.flip(fragile.instance("bad").ping()))._tag, "InstanceStartFailed")
          assert.strictEqual(yield* fragile.instance("other").ping(), "pong from other")
        }).pipe(
          Effect.provide(
            Corps.layer([FragileLive, BackLive], {
              module: fixtures,
              placement: {
                envs: { pool: { kind, count: 2 }, back: { kind: "process", count: 1 } },
                workers: { Fragile: "pool", Back: "back" }
              } satisfies Placement.Placement
            }).pipe(Layer.provide(NodeEnv.layer))
          ),
          Effect.scoped
        ),
      60_000
    )
  }
})

describe("self-handles", () => {
  it("type the contract's own handles", () => {
    const check = (node: typeof Node.Service, counter: typeof Counter.Service) => {
      node.setNext({ next: node })
      node.addChild({ child: node.instance("x") })
      // @ts-expect-error a Counter handle is not a Node handle
      node.setNext({ next: counter })
      const children: Effect.Effect<ReadonlyArray<typeof Node.Service>, unknown> = node.children()
      return children
    }
    assert.isFunction(check)
  })

  for (const kind of ["local", "thread", "process"] as const) {
    it.live(
      `${kind}: a chain and a tree of Node instances, linked by handles passed around, walked inside the Envs`,
      () =>
        Effect.gen(function* () {
          const root = yield* Node
          const nodes = Array.from({ length: 6 }, (_, i) => root.instance(`n${i}`))
          for (let i = 0; i < nodes.length - 1; i++) yield* nodes[i]!.setNext({ next: nodes[i + 1]! })
          assert.deepStrictEqual(yield* nodes[0]!.walk(), ["n0", "n1", "n2", "n3", "n4", "n5"])
          // A handle returned by a Node is callable by the caller.
          const second = yield* nodes[0]!.next()
          assert.strictEqual(second?.key, "n1")
          assert.deepStrictEqual(yield* second!.walk(), ["n1", "n2", "n3", "n4", "n5"])
          assert.isNull(yield* nodes[5]!.next())
          // A tree: t0 with children t1, t2; t1 with children t3, t4.
          const t = Array.from({ length: 5 }, (_, i) => root.instance(`t${i}`))
          yield* t[0]!.addChild({ child: t[1]! })
          yield* t[0]!.addChild({ child: t[2]! })
          yield* t[1]!.addChild({ child: t[3]! })
          yield* t[1]!.addChild({ child: t[4]! })
          assert.strictEqual(yield* t[0]!.size(), 5)
          assert.deepStrictEqual(
            (yield* t[0]!.children()).map((child) => child.key),
            ["t1", "t2"]
          )
        }).pipe(
          Effect.provide(
            Corps.layer([NodeLive], {
              module: fixtures,
              placement: (kind === "local"
                ? {}
                : { envs: { pool: { kind, count: 2 } }, default: "pool" }) satisfies Placement.Placement
            }).pipe(Layer.provide(NodeEnv.layer))
          ),
          Effect.scoped
        ),
      60_000
    )
  }
})

class Store extends Worker.Service<Store>()("Store", {
  put: { payload: { key: Schema.String, value: Schema.String } },
  get: { payload: { key: Schema.String }, success: Schema.NullOr(Schema.String) }
}) {}

/** Overrides `get` (it answers a default instead of null) and adds `keys`. */
class DefaultingStore extends Store.extend<DefaultingStore>()("DefaultingStore", {
  get: { payload: { key: Schema.String, fallback: Schema.String }, success: Schema.String },
  keys: { success: Schema.Array(Schema.String) }
}) {}

const storeHandlers = (map: Map<string, string>) => ({
  put: ({ key, value }: { readonly key: string; readonly value: string }) => {
    map.set(key, value)
  },
  get: ({ key }: { readonly key: string }) => map.get(key) ?? null
})

const StoreLive = Store.conc(Effect.sync(() => storeHandlers(new Map())))
const DefaultingStoreLive = DefaultingStore.conc(
  Effect.sync(() => {
    const map = new Map<string, string>()
    // Store's handlers reused; `get` overridden with its new Schema, `keys` added.
    return {
      ...storeHandlers(map),
      get: ({ key, fallback }) => map.get(key) ?? fallback,
      keys: () => [...map.keys()]
    }
  })
)

describe("extended contracts", () => {
  it("keep the base's methods, add and override some, and refuse a reserved name", () => {
    assert.deepStrictEqual(Object.keys(DefaultingStore.methods), ["put", "get", "keys"])
    assert.strictEqual(DefaultingStore.key, "DefaultingStore")
    assert.strictEqual(DefaultingStore.methods.put, Store.methods.put)
    assert.throws(() => Worker.Service<never>()("Bad", { extend: {} }), /method name "extend" is reserved/)
  })

  it.effect("an extended contract and its base are served side by side; an overridden Schema is enforced", () =>
    Effect.gen(function* () {
      const store = yield* Store
      const defaulting = yield* DefaultingStore
      yield* store.put({ key: "a", value: "1" })
      yield* defaulting.put({ key: "b", value: "2" })
      assert.isNull(yield* store.get({ key: "b" }))
      assert.strictEqual(yield* defaulting.get({ key: "a", fallback: "none" }), "none")
      assert.strictEqual(yield* defaulting.get({ key: "b", fallback: "none" }), "2")
      assert.deepStrictEqual(yield* defaulting.keys(), ["b"])
      // The overridden payload Schema: `fallback` is required on the wire.
      const decode = Schema.decodeUnknownExit(DefaultingStore.group.requests.get("get")!.payloadSchema as any)
      assert.strictEqual(decode({ key: "a" })._tag, "Failure")
      assert.strictEqual(decode({ key: "a", fallback: "x" })._tag, "Success")
    }).pipe(Effect.provide(Corps.layer([StoreLive, DefaultingStoreLive], { placement: {} })))
  )

  it.effect("a contract with self-handles, extended, takes the derived Worker's handles", () => {
    class Peer extends Node.extend<Peer>()("Peer", { ping: { success: Schema.String } }) {}
    const PeerLive = Peer.conc((key) =>
      Effect.sync(() => {
        let next: typeof Peer.Service | null = null
        return {
          setNext: ({ next: handle }) => {
            next = handle
          },
          next: () => next,
          addChild: () => undefined,
          children: () => [],
          walk: () =>
            next === null ? [key] : Effect.map(next.walk(), (rest): ReadonlyArray<string> => [key, ...rest]),
          size: () => 1,
          ping: () => `pong ${key}`
        }
      })
    )
    return Effect.gen(function* () {
      const peer = yield* Peer
      yield* peer.setNext({ next: peer.instance("b") })
      assert.deepStrictEqual(yield* peer.walk(), ["default", "b"])
      assert.strictEqual(yield* (yield* peer.next())!.ping(), "pong b")
      // A Node handle does not decode as a Peer handle.
      const encodedNode = { corps: "c", worker: "Node", key: "x" }
      assert.strictEqual(Schema.decodeUnknownExit(Peer.Handle)(encodedNode)._tag, "Failure")
    }).pipe(Effect.provide(Corps.layer([PeerLive], { placement: {} })))
  })
})

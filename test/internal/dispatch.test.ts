/**
 * The two halves of a call across an Env boundary, with no transport in
 * between: the Dispatcher (Env side) and remoteTarget (caller side).
 */
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Exit, Schema } from "effect"
import { CallError, SerializationError, UnknownMethod, WorkerDefect } from "../../src/CorpsError.ts"
import { Worker } from "../../src/index.ts"
import { ConcWorker } from "../../src/internal/conc.ts"
import { Dispatcher, remoteTarget, type Served } from "../../src/internal/dispatch.ts"
import { LocalFunc } from "../../src/internal/func.ts"
import type * as Wire from "../../src/internal/wire.ts"
import type { AnyWorker } from "../../src/Worker.ts"
import { Overdrawn } from "../fixtures/workers.ts"

/** A stateful Worker with a method for each way a call can end. */
class Stamp extends Worker.Service<Stamp>()("Stamp", {
  at: { payload: { millis: Schema.Number }, success: Schema.DateTimeUtcFromString },
  echo: { payload: { at: Schema.DateTimeUtcFromString }, success: Schema.DateTimeUtcFromString },
  add: { payload: { by: Schema.Number }, success: Schema.Number },
  withdraw: { payload: { amount: Schema.Number }, success: Schema.Number, error: Overdrawn },
  crash: { payload: { message: Schema.String } },
  quit: {},
  invalid: { success: Schema.DateTimeUtcFromString }
}) {}

/** A stateless Worker. */
class Upper extends Worker.Service<Upper>()("Upper", {
  upper: { payload: Schema.String, success: Schema.String }
}) {}

const stampHandlers = () => {
  let count = 0
  return {
    at: ({ millis }: { millis: number }) => DateTime.makeUnsafe(millis),
    echo: ({ at }: { at: DateTime.Utc }) => Effect.succeed(at),
    add: ({ by }: { by: number }) => (count += by),
    withdraw: ({ amount }: { amount: number }) =>
      amount > count
        ? Effect.fail(new Overdrawn({ balance: count, wanted: amount }))
        : Effect.succeed((count -= amount)),
    crash: ({ message }: { message: string }) => {
      throw new Error(message)
    },
    quit: () => Effect.interrupt,
    invalid: () => ({ epochMilliseconds: Number.NaN }) as unknown as DateTime.Utc
  }
}

/** An Env serving one Stamp (Conc) and one Upper (Func), by hand. */
const makeEnv = () => {
  const stamp = new ConcWorker({
    worker: "Stamp",
    corps: "env-1",
    closed: false,
    mailbox: { capacity: 16, onFull: "suspend" },
    concurrent: new Set(),
    build: () => Effect.sync(stampHandlers)
  })
  const upper = new LocalFunc("Upper", "env-1", undefined)
  upper.init({ upper: (s: string) => s.toUpperCase() })
  const served = new Map<string, Served>([
    ["Stamp", { worker: Stamp as unknown as AnyWorker, target: (key) => stamp.instance(key) }],
    ["Upper", { worker: Upper as unknown as AnyWorker, target: () => upper }]
  ])
  return { dispatcher: new Dispatcher("env-1", served), stamp }
}

const request = (method: string, payload: unknown, key = "k"): Wire.Call => ({ worker: "Stamp", key, method, payload })

const newYear = "2026-01-01T00:00:00.000Z"
const newYearMillis = 1767225600000

describe("Dispatcher", () => {
  it.effect("an unknown Worker is an encoded UnknownWorker call error", () =>
    Effect.gen(function* () {
      const { dispatcher } = makeEnv()
      const reply = yield* dispatcher.dispatch({ worker: "Nope", key: "k", method: "add", payload: { by: 1 } })
      assert.deepStrictEqual(reply, {
        _tag: "Failure",
        error: [1, { _tag: "UnknownWorker", worker: "Nope", corps: "env-1" }]
      })
    })
  )

  it.effect("an unknown method is an encoded UnknownMethod call error", () =>
    Effect.gen(function* () {
      const { dispatcher } = makeEnv()
      const reply = yield* dispatcher.dispatch(request("nope", {}))
      assert.deepStrictEqual(reply, {
        _tag: "Failure",
        error: [1, { _tag: "UnknownMethod", worker: "Stamp", method: "nope" }]
      })
    })
  )

  it.effect(
    "a payload that does not fit its Schema is a SerializationError of the payload, and the Worker keeps serving",
    () =>
      Effect.gen(function* () {
        const { dispatcher } = makeEnv()
        yield* dispatcher.dispatch(request("add", { by: 2 }))
        const reply = yield* dispatcher.dispatch(request("add", { by: "two" }))
        assert.strictEqual(reply._tag, "Failure")
        const error = reply._tag === "Failure" ? (reply.error[1] as Record<string, unknown>) : {}
        assert.strictEqual(reply._tag === "Failure" ? reply.error[0] : undefined, 1)
        assert.deepStrictEqual(
          [error._tag, error.worker, error.method, error.part],
          ["SerializationError", "Stamp", "add", "payload"]
        )
        assert.isString(error.issue)
        const badDate = yield* dispatcher.dispatch(request("echo", { at: "not a date" }))
        assert.strictEqual(badDate._tag === "Failure" ? (badDate.error[1] as any).part : undefined, "payload")
        // The bad call never reached the handler: the count went on from 2.
        assert.deepStrictEqual(yield* dispatcher.dispatch(request("add", { by: 3 })), { _tag: "Success", value: 5 })
      })
  )

  it.effect("success values are encoded: a DateTime.Utc travels as a string", () =>
    Effect.gen(function* () {
      const { dispatcher } = makeEnv()
      assert.deepStrictEqual(yield* dispatcher.dispatch(request("at", { millis: newYearMillis })), {
        _tag: "Success",
        value: newYear
      })
      // And the payload arrives decoded: the handler got a DateTime, returned it, and it went back as a string.
      assert.deepStrictEqual(yield* dispatcher.dispatch(request("echo", { at: newYear })), {
        _tag: "Success",
        value: newYear
      })
    })
  )

  it.effect("a Func is served too", () =>
    Effect.gen(function* () {
      const { dispatcher } = makeEnv()
      const reply = yield* dispatcher.dispatch({ worker: "Upper", key: "default", method: "upper", payload: "abc" })
      assert.deepStrictEqual(reply, { _tag: "Success", value: "ABC" })
    })
  )

  it.effect("a success value that does not fit its Schema is a SerializationError of the success", () =>
    Effect.gen(function* () {
      const { dispatcher } = makeEnv()
      const reply = yield* dispatcher.dispatch(request("invalid", undefined))
      assert.strictEqual(reply._tag, "Failure")
      assert.strictEqual(reply._tag === "Failure" ? reply.error[0] : undefined, 1)
      const error = reply._tag === "Failure" ? (reply.error[1] as Record<string, unknown>) : {}
      assert.deepStrictEqual([error._tag, error.part], ["SerializationError", "success"])
    })
  )

  it.effect("a declared error is encoded with the method's Schema, not as a call error", () =>
    Effect.gen(function* () {
      const { dispatcher } = makeEnv()
      yield* dispatcher.dispatch(request("add", { by: 1 }))
      assert.deepStrictEqual(yield* dispatcher.dispatch(request("withdraw", { amount: 4 })), {
        _tag: "Failure",
        error: [0, { _tag: "Overdrawn", balance: 1, wanted: 4 }]
      })
    })
  )

  it.effect("a defect is an encoded WorkerDefect call error", () =>
    Effect.gen(function* () {
      const { dispatcher } = makeEnv()
      const reply = yield* dispatcher.dispatch(request("crash", { message: "boom" }))
      assert.strictEqual(reply._tag, "Failure")
      assert.strictEqual(reply._tag === "Failure" ? reply.error[0] : undefined, 1)
      const error = reply._tag === "Failure" ? (reply.error[1] as Record<string, unknown>) : {}
      assert.deepStrictEqual([error._tag, error.worker, error.method], ["WorkerDefect", "Stamp", "crash"])
      // What travels is plain data.
      assert.deepStrictEqual(JSON.parse(JSON.stringify(reply)), reply)
    })
  )

  it.effect("an interrupted handler is an Interrupted reply", () =>
    Effect.gen(function* () {
      const { dispatcher } = makeEnv()
      assert.deepStrictEqual(yield* dispatcher.dispatch(request("quit", undefined)), { _tag: "Interrupted" })
      assert.deepStrictEqual(yield* dispatcher.dispatch(request("add", { by: 1 })), { _tag: "Success", value: 1 })
    })
  )

  it.effect("keys reach their own instances", () =>
    Effect.gen(function* () {
      const { dispatcher, stamp } = makeEnv()
      yield* dispatcher.dispatch(request("add", { by: 2 }, "a"))
      yield* dispatcher.dispatch(request("add", { by: 5 }, "b"))
      assert.deepStrictEqual(yield* dispatcher.dispatch(request("add", { by: 1 }, "a")), { _tag: "Success", value: 3 })
      assert.deepStrictEqual([...stamp.instances.keys()], ["a", "b"])
    })
  )
})

describe("remoteTarget", () => {
  /** The caller's side wired to a Dispatcher through JSON, as a transport would carry it. */
  const makeRemote = (key = "k") => {
    const { dispatcher } = makeEnv()
    const sent: Array<Wire.Call> = []
    const target = remoteTarget(Stamp as unknown as AnyWorker, key, (req) => {
      const wire = JSON.parse(JSON.stringify(req)) as Wire.Call
      sent.push(wire)
      return Effect.map(dispatcher.dispatch(wire), (reply) => JSON.parse(JSON.stringify(reply)))
    })
    return { target, sent }
  }

  it.effect("round-trips payloads and successes through their Schemas", () =>
    Effect.gen(function* () {
      const { target, sent } = makeRemote()
      const at = DateTime.makeUnsafe(newYearMillis)
      const echoed = yield* target.call("echo", { at })
      assert.isTrue(DateTime.isDateTime(echoed))
      assert.isTrue(DateTime.Equivalence(echoed as DateTime.Utc, at))
      assert.deepStrictEqual(sent, [{ worker: "Stamp", key: "k", method: "echo", payload: { at: newYear } }])
      assert.strictEqual(yield* target.call("add", { by: 2 }), 2)
      assert.strictEqual(yield* target.call("add", { by: 2 }), 4)
    })
  )

  it.effect("decodes a declared error back to its class", () =>
    Effect.gen(function* () {
      const { target } = makeRemote()
      const error = yield* Effect.flip(target.call("withdraw", { amount: 3 }))
      assert.instanceOf(error, Overdrawn)
      assert.deepStrictEqual([(error as Overdrawn).balance, (error as Overdrawn).wanted], [0, 3])
    })
  )

  it.effect("decodes call errors back to their classes", () =>
    Effect.gen(function* () {
      const { target } = makeRemote()
      const defect = yield* Effect.flip(target.call("crash", { message: "boom" }))
      assert.instanceOf(defect, WorkerDefect)
      assert.include((defect as WorkerDefect).message, "boom")
      const invalid = yield* Effect.flip(target.call("invalid", undefined))
      assert.instanceOf(invalid, SerializationError)
      assert.strictEqual((invalid as SerializationError).part, "success")
      assert.isTrue(Schema.is(CallError)(invalid))
    })
  )

  it.effect("an unencodable payload fails on the caller's side, before anything is sent", () =>
    Effect.gen(function* () {
      const { target, sent } = makeRemote()
      const error = yield* Effect.flip(target.call("echo", { at: { epochMilliseconds: Number.NaN } }))
      assert.instanceOf(error, SerializationError)
      assert.strictEqual((error as SerializationError).part, "payload")
      assert.deepStrictEqual(sent, [])
    })
  )

  it.effect("an unknown method fails on the caller's side with UnknownMethod", () =>
    Effect.gen(function* () {
      const { target, sent } = makeRemote()
      const error = yield* Effect.flip(target.call("nope", {}))
      assert.instanceOf(error, UnknownMethod)
      assert.deepStrictEqual(sent, [])
    })
  )

  it.effect("an Interrupted reply interrupts the caller", () =>
    Effect.gen(function* () {
      const { target } = makeRemote()
      const exit = yield* Effect.exit(target.call("quit", undefined))
      assert.isTrue(Exit.hasInterrupts(exit))
    })
  )
})

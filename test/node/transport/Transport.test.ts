import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { CallLost } from "../../../src/CorpsError.ts"
import type * as Wire from "../../../src/internal/wire.ts"
import * as Client from "../../../src/node/transport/Client.ts"
import { child, children, type EnvKind, hasExited, inProcess, thread } from "../../fixtures/transport/envs.ts"

const request = (method: string, payload: unknown = null, key = ""): Wire.Call => ({
  worker: "Echo",
  key,
  method,
  payload
})

const success = (value: unknown): Wire.Exit => ({ _tag: "Success", value })

// The same behavioural assertions over every kind of Env.
const suite = (kind: EnvKind) =>
  describe(kind.kind, () => {
    const connect = Effect.gen(function* () {
      const env = yield* kind.spawn
      const client = yield* Client.makeClient(env.link, { envName: env.name })
      return { env, client }
    })

    it.live("round trip of values, failures and structured-clone types", () =>
      Effect.gen(function* () {
        const { client } = yield* connect
        assert.deepStrictEqual(yield* client.call(request("inc", 41)), success(42))
        assert.deepStrictEqual(yield* client.call(request("fail", { code: 7 })), {
          _tag: "Failure",
          error: [0, { code: 7 }]
        })
        const rich = { map: new Map([[1, "a"]]), bytes: new Uint8Array([1, 2, 3]), big: 10n }
        assert.deepStrictEqual(yield* client.call(request("echo", rich)), success(rich))
        assert.strictEqual(client.inFlight, 0)
      })
    )

    it.live("10,000 concurrent calls all get their own reply", () =>
      Effect.gen(function* () {
        const { client } = yield* connect
        const inputs = Array.from({ length: 10_000 }, (_, i) => i)
        const results = yield* Effect.forEach(inputs, (i) => client.call(request("inc", i)), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(
          results,
          inputs.map((i) => success(i + 1))
        )
        assert.strictEqual(client.inFlight, 0)
      })
    )

    it.live("a handler defect is a Defect reply and the server keeps serving", () =>
      Effect.gen(function* () {
        const { client } = yield* connect
        assert.deepStrictEqual(yield* client.call(request("die")), {
          _tag: "Defect",
          defect: { name: "Error", message: "boom" }
        })
        assert.deepStrictEqual(yield* client.call(request("defect")), { _tag: "Defect", defect: "explicit" })
        const uncloneable = yield* client.call(request("uncloneable"))
        assert.strictEqual(uncloneable._tag, "Defect")
        assert.strictEqual((uncloneable as { defect: { name: string } }).defect.name, "DataCloneError")
        assert.deepStrictEqual(yield* client.call(request("inc", 1)), success(2))
      })
    )

    it.live("a request that cannot be cloned fails alone; its batch is delivered", () =>
      Effect.gen(function* () {
        const { client } = yield* connect
        const [before, bad, after] = yield* Effect.all(
          [client.call(request("inc", 1)), client.call(request("echo", () => 1)), client.call(request("inc", 2))],
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(before, success(2))
        assert.strictEqual(bad._tag, "Defect")
        assert.deepStrictEqual(after, success(3))
      })
    )

    it.live("interrupting the caller interrupts the handler and waits for its finalizer", () =>
      Effect.gen(function* () {
        const { client } = yield* connect
        const fiber = yield* Effect.forkChild(client.call(request("hang", null, "k1")), { startImmediately: true })
        // Answers once `hang` k1 runs in the Env.
        assert.deepStrictEqual(yield* client.call(request("started", null, "k1")), success(true))
        const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
        assert.isTrue(Exit.hasInterrupts(exit))
        // The interruption completed only after the Env confirmed it, so the finalizer has run.
        assert.deepStrictEqual(yield* client.call(request("finalized", null, "k1")), success(true))
        assert.strictEqual(client.inFlight, 0)
      })
    )

    it.live("killing the Env mid-call fails in-flight and later calls with CallLost", () =>
      Effect.gen(function* () {
        const { env, client } = yield* connect
        const fiber = yield* Effect.forkChild(Effect.flip(client.call(request("hang", null, "k2"))), {
          startImmediately: true
        })
        assert.deepStrictEqual(yield* client.call(request("started", null, "k2")), success(true))
        yield* env.kill
        const lost = yield* Fiber.join(fiber).pipe(Effect.timeout("5 seconds"))
        assert.instanceOf(lost, CallLost)
        assert.strictEqual(lost.worker, "Echo")
        assert.strictEqual(lost.method, "hang")
        assert.strictEqual(lost.env, env.name)
        // Sent and never answered: it may have run. Refused by a closed link: it did not.
        assert.strictEqual(lost.mayHaveRun, true)
        assert.strictEqual(client.inFlight, 0)
        const later = yield* Effect.flip(client.call(request("inc", 1)))
        assert.instanceOf(later, CallLost)
        assert.strictEqual(later.reason, lost.reason)
        assert.strictEqual(later.mayHaveRun, false)
      })
    )

    it.live("20,000 calls in flight all fail at once when the Env dies (no deep recursion)", () =>
      Effect.gen(function* () {
        const { env, client } = yield* connect
        const n = 20_000
        const fiber = yield* Effect.forkChild(
          Effect.forEach(
            Array.from({ length: n }, () => request("park")),
            (r) => Effect.flip(client.call(r)),
            { concurrency: "unbounded" }
          ),
          { startImmediately: true }
        )
        // The link is ordered: once this reply is back, every park has been sent and received.
        assert.deepStrictEqual(yield* client.call(request("inc", 0)), success(1))
        assert.strictEqual(client.inFlight, n)
        yield* env.kill
        const lost = yield* Fiber.join(fiber).pipe(Effect.timeout("10 seconds"))
        assert.strictEqual(lost.length, n)
        assert.isTrue(lost.every((error) => error._tag === "CallLost"))
      })
    )
  })

suite(inProcess)
suite(thread)
suite(child)

describe("cleanup", () => {
  it("leaves no child process running", () => {
    assert.isAbove(children.size, 0)
    for (const proc of children) assert.isTrue(hasExited(proc), `child ${proc.pid} still running`)
  })
})

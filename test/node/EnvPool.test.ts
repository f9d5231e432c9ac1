import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { CallLost } from "../../src/CorpsError.ts"
import type * as Wire from "../../src/internal/wire.ts"
import { leastLoaded } from "../../src/node/EnvPool.ts"
import * as Client from "../../src/node/transport/Client.ts"
import type * as Link from "../../src/node/transport/Link.ts"
import { type EnvKind, thread } from "../fixtures/transport/envs.ts"

const request = (method: string, payload: unknown = null): Wire.Call => ({
  worker: "Echo",
  key: "",
  method,
  payload
})

const success = (value: unknown): Wire.Exit => ({ _tag: "Success", value })

const awaitClosed = (link: Link.Link) => Effect.callback<void>((resume) => link.onClose(() => resume(Effect.void)))

const makePool = (kind: EnvKind, size: number) =>
  Effect.gen(function* () {
    const envs = yield* Effect.forEach(Array.from({ length: size }), () => kind.spawn)
    const clients = yield* Effect.forEach(envs, (env) => Client.makeClient(env.link, { envName: env.name }))
    // What NodeEnv's picker does for a Func hosted on every Env: least-loaded, starting at the next in turn.
    const hosts = clients.map((_, i) => i)
    let turn = 0
    const pick = () => leastLoaded((i) => clients[i]!, hosts, turn++ % hosts.length)
    const pool = {
      clients,
      call: (call: Wire.Call) => Effect.callback<Wire.Exit, CallLost>((resume) => pick().register(call, resume)),
      callOn: (index: number, call: Wire.Call) => clients[index]!.call(call),
      inFlight: () => clients.map((client) => client.inFlight)
    }
    return { envs, pool }
  })

describe("EnvPool.leastLoaded", () => {
  it.live("spreads calls over the least-loaded Envs, and both Envs run them", () =>
    Effect.gen(function* () {
      const { envs, pool } = yield* makePool(thread, 2)
      const fiber = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 10 }), () => pool.call(request("block")), { concurrency: "unbounded" }),
        { startImmediately: true }
      )
      // Pinned calls travel behind the blocked ones on each link, so they run after them.
      assert.deepStrictEqual(yield* pool.callOn(0, request("inc", 0)), success(1))
      assert.deepStrictEqual(yield* pool.callOn(1, request("inc", 0)), success(1))
      assert.deepStrictEqual(pool.inFlight(), [5, 5])
      yield* pool.callOn(0, request("release"))
      yield* pool.callOn(1, request("release"))
      const served = (yield* Fiber.join(fiber)).map((exit) => (exit as { value: string }).value)
      for (const env of envs) assert.strictEqual(served.filter((name) => name === env.name).length, 5, env.name)
      assert.deepStrictEqual(pool.inFlight(), [0, 0])
    })
  )

  it.live("skips a closed Env, and fails with CallLost once every Env is closed", () =>
    Effect.gen(function* () {
      const { envs, pool } = yield* makePool(thread, 2)
      yield* envs[0]!.kill
      yield* awaitClosed(envs[0]!.link)
      assert.isDefined(pool.clients[0]!.closeReason)
      const names = yield* Effect.forEach(Array.from({ length: 4 }), () => pool.call(request("where")))
      assert.deepStrictEqual(
        names,
        Array.from({ length: 4 }, () => success(envs[1]!.name))
      )
      yield* envs[1]!.kill
      yield* awaitClosed(envs[1]!.link)
      const lost = yield* Effect.flip(pool.call(request("where")))
      assert.instanceOf(lost, CallLost)
    })
  )
})

/**
 * A persisted Conc on the cluster: real runner processes, PostgreSQL for the
 * cluster and for the state. Its runner is SIGKILLed; the instance re-homed
 * on the other runner resumes from the last committed state, exactly.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, ManagedRuntime, Schedule } from "effect"
import type { SqlClient } from "effect/sql"
import * as Cluster from "../../src/cluster/Cluster.ts"
import { makeTargets } from "../../src/cluster/internal/Entities.ts"
import { dropTables, killAll, makeRun, ports, postgres, type RunnerProcess, startRunner } from "./harness.ts"
import { Vault } from "./workers.ts"

const run = makeRun()
const [p1, p2] = ports(2) as [number, number]
let runners: Array<RunnerProcess> = []
let client: ManagedRuntime.ManagedRuntime<Cluster.Services | SqlClient.SqlClient, unknown>

const call = <A, E>(effect: Effect.Effect<A, E, Cluster.Services | SqlClient.SqlClient>): Promise<A> =>
  client.runPromise(effect)

/** One call to Vault instance `key`; a call lost with its runner (CallLost) is asked again, a bounded number of times. */
const vault = <A>(key: string, method: string, payload?: unknown): Promise<A> =>
  call(
    Effect.gen(function* () {
      const vaults = yield* makeTargets(Vault, "conc")
      return yield* Effect.retry(vaults(key).call(method, payload) as Effect.Effect<A, any>, {
        while: (e: any) => e?._tag === "CallLost",
        times: 100,
        schedule: Schedule.spaced("200 millis")
      })
    })
  )

beforeAll(async () => {
  if (!postgres) return
  client = ManagedRuntime.make(Cluster.layerSql({ settings: run.settings }))
  runners = await Promise.all([startRunner(run, p1), startRunner(run, p2)])
}, 40_000)

afterAll(async () => {
  await killAll()
  if (client !== undefined) {
    await call(dropTables(run.prefix)).catch(() => {})
    await client.dispose()
  }
}, 20_000)

describe.runIf(postgres)("cluster: persisted state", () => {
  it("a Conc re-homed after its runner is SIGKILLed resumes from its last committed state", async () => {
    const key = `vault-${Date.now().toString(36)}`
    const home = await vault<number>(key, "where")
    const victim = runners.find((r) => r.pid === home)
    assert.isDefined(victim, `served by ${home}, not one of the test's runners`)
    let acknowledged = 0
    for (let i = 0; i < 15; i++) {
      acknowledged = await vault<number>(key, "increment", { by: 1 })
    }
    assert.strictEqual(acknowledged, 15)
    // onDefect restart on the cluster: the dying call's change is rolled back, the entity rebuilt from the store.
    const died = await call(
      Effect.gen(function* () {
        const vaults = yield* makeTargets(Vault, "conc")
        return yield* Effect.exit(vaults(key).call("boom", { by: 1000 }))
      })
    )
    assert.isTrue(Exit.isFailure(died))
    const error = Cause.findErrorOption((died as Exit.Failure<unknown, unknown>).cause)
    assert.strictEqual(error._tag === "Some" ? (error.value as any)._tag : undefined, "WorkerDefect")
    assert.strictEqual(await vault<number>(key, "get"), 15)

    victim!.child.kill("SIGKILL")
    await victim!.exited
    // Asked again until the instance answers from its new home (the cluster re-homes it on its own).
    const resumed = await vault<number>(key, "get")
    assert.strictEqual(resumed, 15)
    assert.notStrictEqual(await vault<number>(key, "where"), home)
    assert.strictEqual(await vault<number>(key, "increment", { by: 1 }), 16)
  }, 60_000)
})

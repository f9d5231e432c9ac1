/**
 * TLS on runner traffic: a runner started with a key and certificate serves
 * callers that verify it against the CA; plain TCP and unverified TLS peers
 * get nowhere. Needs PostgreSQL and openssl (both on every dev and CI machine).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Tls from "node:tls"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime } from "effect"
import * as Cluster from "../../src/cluster/Cluster.ts"
import * as ClusterEnv from "../../src/cluster/ClusterEnv.ts"
import { Corps } from "../../src/index.ts"
import { selfSignedCert } from "../fixtures/tls.ts"
import { dropTables, killAll, makeRun, ports, postgres, type RunnerProcess, startRunner } from "./harness.ts"
import { Account, AccountLive } from "./workers.ts"

const run = makeRun()
const dir = mkdtempSync(join(tmpdir(), "corps-tls-"))
const { keyFile, certFile } = selfSignedCert(dir)
let runner: RunnerProcess
let cert: string

beforeAll(async () => {
  cert = readFileSync(certFile, "utf8")
  runner = await startRunner(run, ports(1)[0]!, {
    env: { CORPS_CLUSTER_TLS_KEY: keyFile, CORPS_CLUSTER_TLS_CERT: certFile, CORPS_CLUSTER_TLS_CA: certFile }
  })
}, 60_000)

afterAll(async () => {
  await killAll()
  const client = ManagedRuntime.make(Cluster.layerSql({ settings: { ...run.settings, tls: { ca: cert } } }))
  await client.runPromise(dropTables(run.prefix))
  await client.dispose()
  rmSync(dir, { recursive: true, force: true })
}, 30_000)

describe.runIf(postgres)("cluster over TLS", () => {
  it("a caller that verifies the runner's certificate is served", async () => {
    const App = Corps.layer([AccountLive], {
      module: new URL("./workers.ts", import.meta.url).href,
      placement: { envs: { c: { kind: "cluster", storage: "sql" } }, default: "c" }
    }).pipe(Layer.provide(ClusterEnv.layer({ ...run.settings, tls: { ca: cert } })))
    const balance = await Effect.runPromise(
      Effect.gen(function* () {
        const account = (yield* Account).instance("acct-tls")
        yield* account.deposit({ amount: 3 })
        return yield* account.balance()
      }).pipe(Effect.provide(App), Effect.scoped)
    )
    assert.strictEqual(balance, 3)
  })

  it("plain TCP gets no greeting: the runner drops it at the TLS layer", async () => {
    const socket = Net.createConnection({ host: "127.0.0.1", port: runner.port })
    let received = ""
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1")
    })
    await new Promise<void>((r) => socket.once("connect", () => r()))
    const closed = new Promise<void>((r) => socket.once("close", () => r()))
    socket.write("this is not a TLS client hello\n")
    await closed
    // A plain runner would have greeted first (CORPS-CLUSTER/1 …) and waited for the handshake.
    assert.notInclude(received, "CORPS-CLUSTER")
  })

  it("a TLS peer that does not trust the runner's certificate refuses it", async () => {
    const error = await new Promise<Error>((resolve) => {
      const socket = Tls.connect({ host: "127.0.0.1", port: runner.port })
      socket.once("secureConnect", () => {
        socket.destroy()
        resolve(new Error("connected"))
      })
      socket.once("error", (e) => resolve(e))
    })
    assert.match(error.message, /self[- ]signed/i)
  })
})

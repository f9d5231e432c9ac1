/**
 * A `corps host` daemon speaking TLS only (a self-signed certificate made
 * by the test): the Env checks it against its CA file and its calls flow
 * through the daemon's pipe; a caller without that CA is refused with a
 * typed `tls` reason; a plain-TCP caller never gets in.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { HostEnv } from "../../src/host/index.ts"
import { Corps, type Placement } from "../../src/index.ts"
import { members, Tally, Where } from "../fixtures/hosts.ts"
import { selfSignedCert } from "../fixtures/tls.ts"
import { killAll, secret, startDaemon } from "./harness.ts"

const dir = mkdtempSync(join(tmpdir(), "corps-host-tls-"))
const { keyFile, certFile } = selfSignedCert(dir)
process.env.CORPS_HOST_SECRET = secret
const daemon = await startDaemon({ env: { CORPS_HOST_TLS_KEY: keyFile, CORPS_HOST_TLS_CERT: certFile } })

afterAll(() => {
  killAll()
  rmSync(dir, { recursive: true, force: true })
})

const fixtures = new URL("../fixtures/hosts.ts", import.meta.url).href
const run = <A, E>(placement: Placement.Placement, body: Effect.Effect<A, E, Corps.Provided<typeof members>>) =>
  Effect.scoped(
    Effect.provide(body, Corps.layer(members, { placement, module: fixtures }).pipe(Layer.provide(HostEnv.layer)))
  )

describe("host Env over TLS", () => {
  it.live(
    "calls, keyed instances and their order cross the daemon's TLS pipe",
    () =>
      run(
        { envs: { far: { kind: "host", hosts: [daemon.address], count: 2, tls: { ca: certFile } } }, default: "far" },
        Effect.gen(function* () {
          const where = yield* Where
          const pids = yield* Effect.forEach(Array.from({ length: 100 }), () => where.daemon(), {
            concurrency: "unbounded"
          })
          assert.deepStrictEqual(new Set(pids), new Set([daemon.process.pid]))
          const tally = (yield* Tally).instance("t")
          const totals = yield* Effect.forEach(Array.from({ length: 50 }), () => tally.add({ by: 1 }))
          assert.deepStrictEqual(
            totals,
            Array.from({ length: 50 }, (_, i) => i + 1)
          )
        })
      ),
    120_000
  )

  it.live(
    "a caller that does not trust the certificate gets reason tls; a plain-TCP caller is refused",
    () =>
      Effect.gen(function* () {
        const hostError = (placement: Placement.Placement) =>
          run(
            placement,
            Effect.gen(function* () {
              return yield* (yield* Where).daemon()
            })
          ).pipe(
            Effect.flip,
            Effect.map((error) => (error as { host?: { _tag: string; reason: string } }).host)
          )
        const untrusted = yield* hostError({
          envs: { far: { kind: "host", hosts: [daemon.address], tls: {} } },
          default: "far"
        })
        assert.deepInclude(untrusted, { _tag: "HostConnectError", reason: "tls" })
        const plain = yield* hostError({
          envs: { far: { kind: "host", hosts: [daemon.address], connectTimeoutMillis: 3_000 } },
          default: "far"
        })
        assert.strictEqual(plain?._tag, "HostConnectError")
        assert.strictEqual(daemon.process.exitCode, null)
      }),
    120_000
  )
})

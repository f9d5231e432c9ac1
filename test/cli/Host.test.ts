/**
 * `corps host`: its help, refusals of bad input as one line without a stack
 * trace (run as a real process, as a user would), and a daemon that takes
 * its secret from a file.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { killAll, startDaemon } from "../host/harness.ts"
import { assertRefused, corps } from "./harness.ts"

const dir = mkdtempSync(join(tmpdir(), "corps-cli-host-"))

afterAll(() => {
  killAll()
  rmSync(dir, { recursive: true, force: true })
})

describe.concurrent("corps host", () => {
  it("host --help shows every flag with its environment variable", async () => {
    const help = await corps(["host", "--help"])
    assert.strictEqual(help.code, 0)
    for (const [flag, variable] of [
      ["--listen", "CORPS_HOST_LISTEN"],
      ["--secret-file", "CORPS_HOST_SECRET_FILE"],
      ["--cache-dir", "CORPS_HOST_CACHE_DIR"],
      ["--max-frame-bytes", "CORPS_HOST_MAX_FRAME_BYTES"],
      ["--tls-key", "CORPS_HOST_TLS_KEY"],
      ["--tls-cert", "CORPS_HOST_TLS_CERT"]
    ] as const) {
      assert.match(help.stdout, new RegExp(`${flag} .*\\[${variable}\\]`))
    }
    const root = await corps(["--help"])
    assert.match(root.stdout, /\n\s+host\s+Serve Envs to authenticated callers/)
  })

  it("refuses a bad --listen and a bad --max-frame-bytes in one line each", async () => {
    assertRefused(
      await corps(["host", "--listen", "nowhere"], { CORPS_HOST_SECRET: "s" }),
      "host:port, with a port from 0 to 65535"
    )
    assertRefused(
      await corps(["host", "--listen", "127.0.0.1:0", "--max-frame-bytes", "lots"], { CORPS_HOST_SECRET: "s" }),
      "a positive integer (--max-frame-bytes or CORPS_HOST_MAX_FRAME_BYTES)"
    )
  })

  it("refuses to start without a secret, with two, or with half of TLS", async () => {
    assertRefused(
      await corps(["host", "--listen", "127.0.0.1:0"]),
      "corps host: no secret: set CORPS_HOST_SECRET or give --secret-file"
    )
    const file = join(dir, "secret")
    writeFileSync(file, "from-file\n")
    assertRefused(
      await corps(["host", "--listen", "127.0.0.1:0", "--secret-file", file], { CORPS_HOST_SECRET: "s" }),
      "the secret is given twice"
    )
    assertRefused(
      await corps(["host", "--listen", "127.0.0.1:0", "--tls-key", file], { CORPS_HOST_SECRET: "s" }),
      "TLS needs both --tls-key and --tls-cert"
    )
  })

  it("refuses an address in use in one line", async () => {
    const first = await startDaemon()
    assertRefused(await corps(["host", "--listen", first.address], { CORPS_HOST_SECRET: "s" }), "EADDRINUSE")
  })

  it("serves with its secret from a file (CORPS_HOST_SECRET_FILE)", async () => {
    const file = join(dir, "secret-ok")
    writeFileSync(file, "file-secret\n")
    const daemon = await startDaemon({ env: { CORPS_HOST_SECRET: "", CORPS_HOST_SECRET_FILE: file } })
    assert.match(daemon.address, /^127\.0\.0\.1:\d+$/)
  })
})

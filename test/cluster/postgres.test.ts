import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { displayUrl, isCi, probe, verdict } from "./postgres.ts"

const url = "postgres://postgres:hunter2@db.example:5432/test"

describe("PostgreSQL for the cluster tests", () => {
  it("runs when reachable, CI or not", () => {
    assert.deepStrictEqual(verdict({ reachable: true, ci: false, url }), { _tag: "Run" })
    assert.deepStrictEqual(verdict({ reachable: true, ci: true, url }), { _tag: "Run" })
  })

  it("skips with one line saying why and how to enable them, outside CI", () => {
    assert.deepStrictEqual(verdict({ reachable: false, ci: false, url, why: "ECONNREFUSED" }), {
      _tag: "Skip",
      line: "PostgreSQL not reachable at postgres://postgres:***@db.example:5432/test (ECONNREFUSED): cluster tests skipped; start PostgreSQL or set CORPS_DATABASE_URL"
    })
  })

  it("fails the run under CI", () => {
    const decided = verdict({ reachable: false, ci: true, url })
    assert.strictEqual(decided._tag, "Fail")
    assert.include(decided._tag === "Fail" ? decided.line : "", "CI=true needs it")
  })

  it("reads CI as CI services set it", () => {
    assert.deepStrictEqual(["true", "1", "false", "", undefined].map(isCi), [true, true, false, false, false])
  })

  it("never prints a password", () => {
    assert.strictEqual(displayUrl("postgres://u:secret@h/db"), "postgres://u:***@h/db")
    assert.strictEqual(displayUrl("not a url"), "(an unparsable URL)")
  })

  it("probes: a listening port answers, a closed one does not", async () => {
    const server = Net.createServer((socket) => socket.destroy())
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
    const port = (server.address() as Net.AddressInfo).port
    assert.isUndefined(await probe(`postgres://x@127.0.0.1:${port}/db`))
    await new Promise<void>((resolve) => server.close(() => resolve()))
    assert.strictEqual(await probe(`postgres://x@127.0.0.1:${port}/db`), "ECONNREFUSED")
    assert.strictEqual(await probe("::"), "CORPS_DATABASE_URL is not a URL")
  })
})

/**
 * `corps status` and `corps top`, run as real processes against the
 * dashboard of a live Corps (a thread Env), and against an address where no
 * dashboard answers.
 */
import { execFile } from "node:child_process"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { render, toUrl } from "../../src/cli/snapshots.ts"
import { Corps, Dashboard } from "../../src/index.ts"
import { Snapshot } from "../../src/monitoring/Snapshot.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { CartLive, Shop, ShopLive } from "../fixtures/dashboard.ts"

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))
const fixtures = new URL("../fixtures/dashboard.ts", import.meta.url).href

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const corps = (args: ReadonlyArray<string>) =>
  Effect.promise(
    () =>
      new Promise<Ran>((resolve) => {
        execFile(
          process.execPath,
          [main, ...args],
          { timeout: 30_000, killSignal: "SIGKILL" },
          (error, stdout, stderr) =>
            resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })
        )
      })
  )

const live = Corps.layer([ShopLive, CartLive], {
  name: "shop",
  module: fixtures,
  placement: { envs: { pool: { kind: "thread", count: 2 } }, workers: { Shop: { env: "pool" } } }
}).pipe(Layer.provideMerge(Dashboard.layer({ port: 0 })), Layer.provide(NodeEnv.layer))

/** A port nothing listens on: taken from the OS, then released. */
const freePort = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number }
        server.close(() => resolve(port))
      })
    })
)

describe("corps status / corps top", () => {
  it.live(
    "status --json prints the Snapshot; status prints the tables; top renders frames",
    () =>
      Effect.gen(function* () {
        const shop = yield* Shop
        yield* shop.price({ item: "apple" })
        const { url, port } = yield* Dashboard.Dashboard
        const [json, table, top] = yield* Effect.all(
          [
            corps(["status", url, "--json"]),
            corps(["status", `127.0.0.1:${port}`]),
            corps(["top", url, "--frames", "2", "--interval", "100"])
          ],
          { concurrency: "unbounded" }
        )
        assert.strictEqual(json.code, 0, json.stderr)
        const snapshot = Schema.decodeUnknownSync(Snapshot)(JSON.parse(json.stdout))
        assert.strictEqual(snapshot.corps.name, "shop")
        assert.deepStrictEqual(snapshot.corps.workers.map((w) => w.name).sort(), ["Cart", "Shop"])
        assert.deepStrictEqual(
          snapshot.corps.envs.find((e) => e.name === "pool")?.slots.map((s) => s.state),
          ["serving", "serving"]
        )

        assert.strictEqual(table.code, 0, table.stderr)
        assert.match(table.stdout, /^corps shop /m)
        assert.match(table.stdout, /^WORKER\s+KIND\s+ENV\s+INST/m)
        assert.match(table.stdout, /^Shop\s+func\s+pool\s+2\s/m)
        assert.match(table.stdout, /^Cart\s+conc\s+local\s/m)
        assert.match(table.stdout, /^pool\s+thread\s+0\s+serving/m)
        assert.match(table.stdout, /^pool\s+thread\s+1\s+serving/m)
        assert.match(table.stdout, /EnvStarted\s+pool#\d started/)

        // Not a TTY: frames follow each other without clearing, each with the rate column.
        assert.strictEqual(top.code, 0, top.stderr)
        assert.strictEqual(top.stdout.match(/^corps shop /gm)?.length, 2)
        assert.match(top.stdout, /^WORKER\s+KIND\s+ENV\s+INST\s+MAILBOX\s+CALLS\s+RATE\/s/m)
      }).pipe(Effect.provide(live), Effect.scoped),
    // Three CLI processes start at once: slow on a loaded machine.
    120_000
  )

  it.live(
    "an address where no dashboard answers: one line, exit code 1",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const [status, top, bad] = yield* Effect.all(
          [corps(["status", `127.0.0.1:${port}`]), corps(["top", `127.0.0.1:${port}`]), corps(["status", "nowhere"])],
          { concurrency: "unbounded" }
        )
        for (const [ran, command] of [
          [status, "status"],
          [top, "top"]
        ] as const) {
          assert.strictEqual(ran.code, 1, ran.stderr)
          assert.include(ran.stderr, `corps ${command}: no dashboard answers at 127.0.0.1:${port}: ECONNREFUSED`)
          assert.notMatch(ran.stderr, /^\s+at /m, "a stack trace")
          assert.strictEqual(ran.stdout, "")
        }
        assert.strictEqual(bad.code, 1)
        assert.include(bad.stderr, "corps status: dashboard at nowhere: invalid address or options: give host:port")
      }),
    120_000
  )

  it("toUrl: host:port, :port, and http URLs; nothing else", () => {
    assert.strictEqual(toUrl("127.0.0.1:9400")?.href, "http://127.0.0.1:9400/")
    assert.strictEqual(toUrl(":9400")?.href, "http://127.0.0.1:9400/")
    assert.strictEqual(toUrl("http://example.test:80/corps")?.href, "http://example.test/corps/")
    assert.strictEqual(toUrl("https://example.test/")?.href, "https://example.test/")
    assert.isUndefined(toUrl("nowhere"))
    assert.isUndefined(toUrl("ftp://example.test:21/"))
    assert.isUndefined(toUrl("host:notaport"))
  })

  it("a cluster Env's runners render as slots with their address and host; a stopped one with its reason", () => {
    const slot = { inFlight: 0, restarts: 0, threadId: 0 }
    const text = render(
      {
        at: 0,
        corps: {
          id: "c1",
          name: "bank",
          workers: [],
          envs: [
            {
              name: "c",
              kind: "cluster",
              size: 2,
              slots: [
                { ...slot, index: 0, state: "serving", pid: 4242, address: "10.0.0.1:7000", host: "box-a" },
                {
                  ...slot,
                  index: 1,
                  state: "stopped",
                  pid: 4343,
                  address: "10.0.0.2:7000",
                  reason: "no report from the runner (stopped or unreachable)"
                }
              ]
            }
          ],
          children: []
        },
        events: []
      },
      { color: false, events: 5 }
    )
    const lines = text.split("\n")
    const first = lines.find((line) => line.includes("4242"))!
    assert.match(first, /^c\s+cluster\s+0\s+serving\s+4242\s+0\s.*10\.0\.0\.1:7000 on box-a$/)
    const second = lines.find((line) => line.includes("4343"))!
    assert.match(second, /stopped.*no report from the runner/)
  })
})

/**
 * The dashboard in a real browser: Debian's chromium driven by
 * playwright-core. The page shows the Workers of a running Corps, their call
 * counts rise as calls are made, and a process Env killed with SIGKILL shows
 * its restart on the timeline and in its slot.
 *
 * Skipped only when chromium is not installed and this is not CI (`.ci/run`
 * installs it; under CI=true a missing chromium fails the test).
 * `CORPS_SCREENSHOT=1` also writes the screenshot to docs/dashboard.png.
 */
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Schema } from "effect"
import { type Browser, chromium, type Page } from "playwright-core"
import { Corps, Dashboard, Monitoring } from "../../src/index.ts"
import { Snapshot } from "../../src/monitoring/Snapshot.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { Cart, CartLive, Shop, ShopLive } from "../fixtures/dashboard.ts"

const executable = spawnSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).stdout.trim()
const absent = executable === "" && process.env.CI !== "true"

const fixtures = new URL("../fixtures/dashboard.ts", import.meta.url).href

const live = Corps.layer([ShopLive, CartLive], {
  name: "shop",
  module: fixtures,
  placement: { envs: { pool: { kind: "process", count: 2 } }, workers: { Shop: { env: "pool" } } }
}).pipe(
  Layer.provideMerge(Dashboard.layer({ port: 0 })),
  Layer.provideMerge(Monitoring.layer({ intervalMillis: 200 })),
  Layer.provide(NodeEnv.layer)
)

/** The flags a closed network and a container need. */
const args = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

const browser = Effect.acquireRelease(
  Effect.promise(() => chromium.launch({ executablePath: executable || "chromium", args })),
  (browser: Browser) => Effect.promise(() => browser.close())
)

/**
 * Waits (polling in the page every 100 ms, generous timeout) until the
 * JavaScript expression `condition` holds there. A string: these tests are
 * type-checked without the DOM's types.
 */
const until = (page: Page, condition: string) =>
  Effect.promise(() => page.waitForFunction(condition, undefined, { timeout: 60_000, polling: 100 }))

/** The calls the page shows for `worker`. */
const callsShown = (worker: string) => `Number(document.querySelector('[data-worker="${worker}"]')?.dataset.calls)`

describe.skipIf(absent)("Dashboard in chromium", () => {
  it.live(
    "shows the Workers, counts rising with calls, and a killed Env's restart on the timeline",
    () =>
      Effect.gen(function* () {
        const shop = yield* Shop
        const cart = yield* Cart
        const { url } = yield* Dashboard.Dashboard
        const chrome = yield* browser
        const page = yield* Effect.promise(() => chrome.newPage({ viewport: { width: 1440, height: 900 } }))
        // The page's own errors go to the test's output: a broken script shows why a wait timed out.
        page.on("pageerror", (error) => console.error(`page error: ${error.message}`))
        page.on("console", (message) => {
          if (message.type() === "error") console.error(`page console: ${message.text()}`)
        })
        yield* Effect.promise(() => page.goto(url))

        // The page shows the Corps' Workers and both slots of its process Env.
        yield* until(
          page,
          `document.querySelector('[data-worker="Shop"]') !== null &&
           document.querySelector('[data-worker="Cart"]') !== null &&
           document.querySelectorAll('[data-env="pool"] [data-state="serving"]').length === 2`
        )
        assert.strictEqual(yield* Effect.promise(() => page.textContent("#status")), "live")

        // Calls made now show up within the page's next snapshots.
        const before = (yield* Effect.promise(() => page.evaluate(callsShown("Shop")))) as number
        yield* Effect.forEach(["apple", "pear", "fig", "kiwi", "plum"], (item) => shop.price({ item }), {
          concurrency: 5
        })
        yield* cart.add({ item: "apple" })
        yield* until(page, `${callsShown("Shop")} >= ${before + 5} && ${callsShown("Cart")} >= 1`)

        // Some load while an Env is killed: its calls in flight fail (CallLost), the others go on.
        const load = yield* Effect.forkChild(
          Effect.forever(
            Effect.forEach(["apple", "pear"], (item) => Effect.exit(shop.price({ item })), { concurrency: 2 })
          )
        )
        const snapshot = yield* Effect.promise(() => fetch(new URL("api/snapshot", url)).then((r) => r.json())).pipe(
          Effect.flatMap(Schema.decodeUnknownEffect(Snapshot)),
          Effect.orDie
        )
        const victim = snapshot.corps.envs.find((e) => e.name === "pool")!.slots[0]!
        assert.isDefined(victim.pid)
        assert.notStrictEqual(victim.pid, process.pid)
        process.kill(victim.pid!, "SIGKILL")

        yield* until(
          page,
          `document.querySelector('#timeline [data-event="EnvCrashed"]') !== null &&
           document.querySelector('#timeline [data-event="EnvStarted"][data-restart="true"]') !== null &&
           document.querySelector('[data-slot="pool#0"][data-restarts="1"][data-state="serving"]') !== null`
        )
        yield* Fiber.interrupt(load)
        const timeline = yield* Effect.promise(() => page.textContent("#timeline"))
        assert.include(timeline, "pool#0 restarted (attempt 1)")

        const dir = mkdtempSync(join(tmpdir(), "corps-dashboard-"))
        const file = join(dir, "dashboard.png")
        yield* Effect.promise(() => page.screenshot({ path: file, fullPage: true }))
        // A PNG, of some substance.
        const png = readFileSync(file)
        assert.strictEqual(png.subarray(1, 4).toString(), "PNG")
        assert.isTrue(png.length > 10_000)
        if (process.env.CORPS_SCREENSHOT === "1") {
          copyFileSync(file, fileURLToPath(new URL("../../docs/dashboard.png", import.meta.url)))
        }
        rmSync(dir, { recursive: true, force: true })
      }).pipe(Effect.provide(live), Effect.scoped),
    180_000
  )
})

/**
 * `corps runner`: its help, refusals of bad input as one line without a stack
 * trace (run as a real process, as a user would), the resolution of flags,
 * environment and secret file into a plan, and a runner that takes its
 * secret from a file serving a caller.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { NodeFileSystem } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, Layer, Option, Redacted } from "effect"
import * as Runner from "../../src/cli/Runner.ts"
import * as ClusterEnv from "../../src/cluster/ClusterEnv.ts"
import { Corps } from "../../src/index.ts"
import { dropTables, killAll, makeRun, ports, postgres, secret, startRunner, stop } from "../cluster/harness.ts"
import { Account, AccountLive } from "../cluster/workers.ts"
import { assertRefused, corps } from "./harness.ts"

const dir = mkdtempSync(join(tmpdir(), "corps-cli-"))

afterAll(async () => {
  await killAll()
  rmSync(dir, { recursive: true, force: true })
})

describe.concurrent("corps", () => {
  it("lists its sub-commands and version", async () => {
    const help = await corps(["--help"])
    assert.strictEqual(help.code, 0)
    assert.match(help.stdout, /SUBCOMMANDS\n\s+runner\s+Serve the Workers a module exports/)
    const version = await corps(["--version"])
    const { version: expected } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
    assert.strictEqual(version.stdout.trim(), `corps v${expected}`)
  })

  it("runner --help shows every flag with its environment variable", async () => {
    const help = await corps(["runner", "--help"])
    assert.strictEqual(help.code, 0)
    for (const [flag, variable] of [
      ["--module", "CORPS_MODULE"],
      ["--address", "CORPS_RUNNER_ADDRESS"],
      ["--listen", "CORPS_RUNNER_LISTEN"],
      ["--database-url", "CORPS_DATABASE_URL"],
      ["--prefix", "CORPS_CLUSTER_PREFIX"],
      ["--shards", "CORPS_SHARDS_PER_GROUP"],
      ["--failover", "CORPS_CLUSTER_FAILOVER"],
      ["--secret-file", "CORPS_CLUSTER_SECRET_FILE"]
    ] as const) {
      assert.match(help.stdout, new RegExp(`${flag} .*\\[${variable}\\]`))
    }
    assert.notInclude(help.stdout, "--secret ")
  })

  it("refuses --failover fsat with the valid values", async () => {
    assertRefused(
      await corps(["runner", "--module", "m.ts", "--address", "127.0.0.1:1", "--failover", "fsat"]),
      'Invalid value for flag --failover: "fsat". Expected: "fast" | "default"'
    )
  })

  it("refuses a bad CORPS_CLUSTER_FAILOVER, naming the variable", async () => {
    assertRefused(
      await corps(["runner"], { CORPS_MODULE: "m.ts", CORPS_RUNNER_ADDRESS: "h:1", CORPS_CLUSTER_FAILOVER: "fsat" }),
      "one of fast, default (--failover or CORPS_CLUSTER_FAILOVER)"
    )
  })

  it("refuses a missing --module", async () => {
    assertRefused(await corps(["runner", "--address", "127.0.0.1:1"]), "Missing required flag: --module")
  })

  it("refuses a bad --address and a bad --shards", async () => {
    assertRefused(
      await corps(["runner", "--module", "m.ts", "--address", "localhost"]),
      'Invalid value for flag --address: "localhost". Expected: host:port'
    )
    assertRefused(
      await corps(["runner", "--module", "m.ts", "--address", "h:1"], { CORPS_SHARDS_PER_GROUP: "0" }),
      "a positive integer (--shards or CORPS_SHARDS_PER_GROUP)"
    )
  })

  it("reports a module that cannot be loaded in one line", async () => {
    const missing = join(dir, "no-such-module.ts")
    const ran = await corps(["runner", "--module", missing, "--address", "127.0.0.1:1"])
    assertRefused(ran, `corps runner: cannot serve ${pathToFileURL(missing).href}: Cannot find module`)
  })
})

const input = (overrides: Partial<Runner.Input> = {}): Runner.Input => ({
  module: "./app.ts",
  address: { host: "10.0.0.5", port: 34431 },
  listen: Option.none(),
  databaseUrl: Option.none(),
  prefix: Option.none(),
  shards: Option.none(),
  failover: Option.none(),
  secretFile: Option.none(),
  ...overrides
})

/** Runs `Runner.plan` with `env` as the whole environment. */
const plan = (overrides: Partial<Runner.Input>, env: Record<string, string> = {}) =>
  Runner.plan(input(overrides)).pipe(
    Effect.provide(Layer.mergeAll(NodeFileSystem.layer, ConfigProvider.layer(ConfigProvider.fromEnv({ env })))),
    Effect.exit
  )

const failure = (exit: Exit.Exit<Runner.Plan, Runner.RunnerStartError>): Runner.RunnerStartError => {
  if (Exit.isSuccess(exit)) return assert.fail("expected a RunnerStartError")
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" ? error.value : assert.fail(String(exit.cause))
}

describe("corps runner: the plan", () => {
  it.effect("reads the secret from a file, without its final newline", () =>
    Effect.gen(function* () {
      const file = join(dir, "secret")
      writeFileSync(file, "file-secret-0123456789\n")
      const exit = yield* plan({ secretFile: Option.some(file) }, { CORPS_DATABASE_URL: "postgres://db/x" })
      assert.isTrue(Exit.isSuccess(exit))
      const made = Exit.isSuccess(exit) ? exit.value : assert.fail()
      assert.strictEqual(Redacted.value(made.settings.secret!), "file-secret-0123456789")
      assert.strictEqual(Redacted.value(made.settings.databaseUrl!), "postgres://db/x")
    })
  )

  it.effect("refuses a secret given twice, a missing file and an empty one", () =>
    Effect.gen(function* () {
      const file = join(dir, "twice")
      writeFileSync(file, "file-secret-0123456789")
      const twice = failure(
        yield* plan({ secretFile: Option.some(file) }, { CORPS_CLUSTER_SECRET: "env-secret-0123456789" })
      )
      assert.strictEqual(twice._tag, "CorpsRunnerStartError")
      assert.include(twice.message, "the secret is given twice (CORPS_CLUSTER_SECRET and the file")
      const missing = failure(yield* plan({ secretFile: Option.some(join(dir, "absent")) }))
      assert.include(missing.message, `cannot read the secret file ${join(dir, "absent")}`)
      const empty = join(dir, "empty")
      writeFileSync(empty, "\n")
      assert.include(failure(yield* plan({ secretFile: Option.some(empty) })).message, "is empty")
    })
  )

  it.effect("takes the secret from CORPS_CLUSTER_SECRET; flags win over the environment", () =>
    Effect.gen(function* () {
      const exit = yield* plan(
        {
          module: "/srv/app.ts",
          listen: Option.some("0.0.0.0"),
          prefix: Option.some("shop"),
          shards: Option.some(64),
          failover: Option.some("default")
        },
        {
          CORPS_CLUSTER_SECRET: "env-secret-0123456789",
          CORPS_CLUSTER_PREFIX: "other",
          CORPS_SHARDS_PER_GROUP: "300",
          CORPS_CLUSTER_FAILOVER: "fast"
        }
      )
      const made = Exit.isSuccess(exit) ? exit.value : assert.fail(String(exit))
      assert.strictEqual(Redacted.value(made.settings.secret!), "env-secret-0123456789")
      assert.deepStrictEqual(
        { prefix: made.settings.prefix, shards: made.settings.shardsPerGroup, failover: made.settings.failover },
        { prefix: "shop", shards: 64, failover: "default" }
      )
      assert.deepStrictEqual(made.runner, { host: "10.0.0.5", port: 34431, listenHost: "0.0.0.0" })
      assert.strictEqual(made.moduleUrl, "file:///srv/app.ts")
    })
  )
})

describe.runIf(postgres)("corps runner with a secret file", () => {
  it("serves callers that hold the same secret", async () => {
    const run = makeRun()
    const file = join(dir, "runner-secret")
    writeFileSync(file, `${secret}\n`)
    const runner = await startRunner(run, ports(1)[0]!, { secretFile: file })
    try {
      const App = Corps.layer([AccountLive], {
        module: new URL("../cluster/workers.ts", import.meta.url).href,
        placement: { envs: { c: { kind: "cluster", storage: "sql" } }, default: "c" }
      }).pipe(Layer.provide(ClusterEnv.layer(run.settings)))
      const balance = await Effect.runPromise(
        Effect.gen(function* () {
          const account = (yield* Account).instance("acct-secret-file")
          yield* account.deposit({ amount: 4 })
          return yield* account.balance()
        }).pipe(Effect.provide(App), Effect.scoped)
      )
      assert.strictEqual(balance, 4)
    } finally {
      await stop(runner)
      await Effect.runPromise(
        dropTables(run.prefix).pipe(Effect.provide(PgClient.layer({ url: run.settings.databaseUrl! })))
      )
    }
  }, 60_000)
})

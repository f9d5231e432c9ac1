/**
 * The package as a user gets it: `npm pack` (which builds dist/ through
 * `prepack`), the tarball installed into a fresh project outside the repo,
 * and there a TypeScript program run by Node 24 and a plain `.mjs` one, each
 * with a Conc in a thread Env and one in a process Env; the user's `.ts` file
 * type-checked against the published declarations; `npx corps`; and, with
 * PostgreSQL, a runner serving the user's module from the installed package.
 *
 * Node does not strip types under node_modules, so any `.ts` reached there
 * fails at once (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING): this is what
 * catches it.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { PgClient } from "@effect/sql-pg"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { databaseUrl, dropTables, ports, postgres } from "../cluster/harness.ts"

const repo = fileURLToPath(new URL("../..", import.meta.url))
const appSources = fileURLToPath(new URL("./app/", import.meta.url))
const dir = mkdtempSync(join(tmpdir(), "corps-package-"))
const app = join(dir, "app")
// The pinned Node 24 first on PATH, for npm, npx and the `corps` shebang alike.
const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH}` }

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to its end (killed after `timeoutMs`: Node 24 can hang in process.exit). */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeoutMs = 90_000): Promise<Ran> =>
  new Promise((resolve) => {
    execFile(command, args, { cwd, env, timeout: timeoutMs, killSignal: "SIGKILL" }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })
    )
  })

const ok = (ran: Ran, what: string): Ran => {
  if (ran.code !== 0) assert.fail(`${what} exited with ${ran.code}:\n${ran.stdout}\n${ran.stderr}`)
  return ran
}

let packed: ReadonlyArray<string> = []

beforeAll(async () => {
  const pack = ok(await run("npm", ["pack", "--json", "--pack-destination", dir], repo), "npm pack")
  // prepack's build logs before the JSON report.
  const report = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("[")))[0]
  packed = report.files.map((file: { path: string }) => file.path)
  mkdirSync(app)
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "corps-user-app", private: true, type: "module" }))
  for (const file of ["threads.ts", "threads.mjs", "hosts.ts"]) copyFileSync(join(appSources, file), join(app, file))
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2024",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        allowImportingTsExtensions: true,
        erasableSyntaxOnly: true,
        verbatimModuleSyntax: true,
        skipLibCheck: true,
        types: ["node"],
        typeRoots: [join(repo, "node_modules/@types")]
      },
      files: ["threads.ts", "hosts.ts"]
    })
  )
  ok(
    await run(
      "npm",
      ["install", join(dir, report.filename), "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
      app
    ),
    "npm install of the tarball"
  )
}, 180_000)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("the published package", () => {
  it("ships the build, the README and the CHANGELOG, and no sources or tests", () => {
    const strays = packed.filter(
      (path) => !(path.startsWith("dist/") || ["package.json", "README.md", "CHANGELOG.md"].includes(path))
    )
    assert.deepStrictEqual(strays, [])
    for (const needed of ["dist/index.js", "dist/index.d.ts", "dist/node/envMain.js", "dist/cli/main.js"]) {
      assert.include(packed, needed)
    }
    assert.isFalse(
      packed.some((path) => path.endsWith(".ts") && !path.endsWith(".d.ts")),
      "a .ts source in the package"
    )
  })

  it("runs a user's TypeScript program with Concs in a thread and a process", async () => {
    const ran = ok(await run(process.execPath, ["threads.ts"], app), "node threads.ts")
    assert.strictEqual(ran.stdout, "ts thread: total=6 in another thread\nts process: total=30 in another process\n")
  })

  it("runs a plain .mjs program with Concs in a thread and a process", async () => {
    const ran = ok(await run(process.execPath, ["threads.mjs"], app), "node threads.mjs")
    assert.strictEqual(ran.stdout, "mjs thread: total=6 in another thread\nmjs process: total=30 in another process\n")
  })

  it("type-checks the user's program against the published declarations", async () => {
    ok(
      await run(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], app),
      "tsc in the user's project"
    )
  })

  it("installs the corps command: npx corps runner --help", async () => {
    const ran = ok(await run("npx", ["--no", "corps", "runner", "--help"], app), "npx corps runner --help")
    assert.include(ran.stdout, "corps runner [flags]")
    for (const flag of ["--module", "--address", "--listen", "--database-url", "--failover", "--secret-file"]) {
      assert.include(ran.stdout, flag)
    }
  })

  it("serves a host Env with the installed corps host, the user's module shipped to it", async () => {
    const hostEnv = { ...env, CORPS_HOST_SECRET: "package-test-secret" }
    const daemon = spawn(
      "npx",
      ["--no", "corps", "host", "--listen", "127.0.0.1:0", "--cache-dir", join(dir, "host-cache")],
      { cwd: app, env: hostEnv, stdio: ["ignore", "pipe", "pipe"], detached: true }
    )
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let out = ""
        daemon.stdout!.on("data", (chunk: Buffer) => {
          out += chunk.toString()
          const ready = /corps-host ready (\S+)/.exec(out)
          if (ready !== null) resolve(ready[1]!)
        })
        daemon.once("exit", (code) => reject(new Error(`corps host exited with ${code}: ${out}`)))
      })
      const ran = await new Promise<Ran>((resolve) =>
        execFile(
          process.execPath,
          ["hosts.ts", address],
          { cwd: app, env: hostEnv, timeout: 90_000, killSignal: "SIGKILL" },
          (error, stdout, stderr) =>
            resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })
        )
      )
      ok(ran, "node hosts.ts")
      assert.strictEqual(ran.stdout, "host: total=6 in another process\n")
    } finally {
      // npx runs the daemon under a shell: its whole process group goes.
      process.kill(-daemon.pid!, "SIGKILL")
    }
  }, 180_000)

  it.runIf(postgres)(
    "serves the user's module from a runner of the installed package",
    async () => {
      const port = ports(1)[0]!
      const prefix = `corps_pkg${Date.now().toString(36)}`
      const child: ChildProcess = spawn(
        "npx",
        ["--no", "corps", "runner", "--module", "threads.ts", "--address", `127.0.0.1:${port}`],
        {
          cwd: app,
          env: {
            ...env,
            CORPS_DATABASE_URL: databaseUrl,
            CORPS_CLUSTER_SECRET: "package-test-secret-0123456789",
            CORPS_CLUSTER_PREFIX: prefix
          },
          stdio: ["ignore", "pipe", "pipe"],
          detached: true
        }
      )
      let out = ""
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      const ready = new Promise<boolean>((resolve) => {
        const onData = (chunk: Buffer) => {
          out += chunk.toString()
          if (out.includes("corps-runner ready")) resolve(true)
        }
        child.stdout!.on("data", onData)
        child.stderr!.on("data", onData)
        exited.then(() => resolve(false))
      })
      try {
        assert.isTrue(await ready, `the runner did not start:\n${out}`)
        assert.include(out, `corps-runner ready 127.0.0.1:${port}`)
      } finally {
        // npx runs the runner as its child: signal the whole group.
        process.kill(-child.pid!, "SIGKILL")
        await exited
        await Effect.runPromise(
          dropTables(prefix).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(databaseUrl) })))
        )
      }
    },
    60_000
  )
})

/**
 * A program without the `if (import.meta.main)` guard, run with its Workers in
 * threads or processes: each Env imports the module and so runs the program
 * again. Inside an Env, that Corps must refuse to start Envs of its own (a
 * typed EnvStartError that says to add the guard), and the caller's Corps must
 * fail with the same message — never recurse, never hang.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"

const fixture = fileURLToPath(new URL("../fixtures/unguarded.ts", import.meta.url))

/** Runs the fixture as its own Node program; a kill timeout, since Node 24 sometimes hangs in exit. */
const runProgram = (kind: "thread" | "process") =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "corps-unguarded-"))),
    (dir) =>
      Effect.callback<{ code: number | null; stdout: string; stderr: string; runs: Array<string> }>((resume) => {
        const log = join(dir, "runs.log")
        execFile(
          process.execPath,
          [fixture],
          { env: { ...process.env, UNGUARDED_KIND: kind, UNGUARDED_LOG: log }, timeout: 60_000, killSignal: "SIGKILL" },
          (error, stdout, stderr) => {
            const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
            const runs = readFileSync(log, "utf8").trim().split("\n")
            resume(Effect.succeed({ code, stdout, stderr, runs }))
          }
        )
      }),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

describe("a module without the import.meta.main guard", () => {
  for (const kind of ["thread", "process"] as const) {
    it.live(
      `${kind}: the Corps fails with an EnvStartError that says to add the guard, and no Env starts more Envs`,
      () =>
        Effect.gen(function* () {
          const { code, stdout, stderr, runs } = yield* runProgram(kind)
          assert.strictEqual(code, 1, stderr)
          // The caller's own Corps fails, naming the Env and the fix.
          const main = stderr.split("\n").find((line) => line.startsWith("main: "))
          assert.isDefined(main, stderr)
          assert.include(main!, "main: EnvStartError: Env pool could not start from")
          assert.include(main!, "unguarded.ts")
          assert.include(main!, "if (import.meta.main)")
          assert.notInclude(stdout, "hello")
          // Inside an Env the program's Corps is refused with the same typed error.
          assert.match(stderr, /env: EnvStartError: Env pool#[01] could not start .*if \(import\.meta\.main\)/)
          // The program ran once in the caller and at most once in each of the 2 Envs: no recursion.
          assert.deepStrictEqual(
            runs.filter((run) => run.startsWith("main ")),
            [runs[0]]
          )
          const inEnvs = runs.filter((run) => run.startsWith("env ")).length
          assert.isAtLeast(inEnvs, 1)
          assert.isAtMost(inEnvs, 2)
          assert.strictEqual(runs.length, 1 + inEnvs)
        }),
      90_000
    )
  }
})

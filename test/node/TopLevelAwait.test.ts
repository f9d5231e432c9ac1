/**
 * A guarded program that awaits its Corps at the top level: the caller must
 * not import its own still-evaluating module while starting Envs (that waited
 * for itself until Node gave up with "unsettled top-level await").
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"

const fixture = fileURLToPath(new URL("../fixtures/topLevelAwait.ts", import.meta.url))

const runProgram = (kind: "thread" | "process") =>
  Effect.callback<{ code: number | null; stdout: string; stderr: string }>((resume) => {
    execFile(
      process.execPath,
      [fixture],
      { env: { ...process.env, TLA_KIND: kind }, timeout: 60_000, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
        resume(Effect.succeed({ code, stdout, stderr }))
      }
    )
  })

describe("a program that awaits its Corps at the top level", () => {
  for (const kind of ["thread", "process"] as const) {
    it.live(`${kind}: runs to the end, and its Env reaches the enclosing Corps' Worker`, () =>
      Effect.gen(function* () {
        const { code, stdout, stderr } = yield* runProgram(kind)
        assert.strictEqual(code, 0, stderr)
        assert.strictEqual(stdout.trim(), "hello world from an Env")
      })
    )
  }
})

/**
 * Runs `corps …` from the sources as a real process, as a user would, and
 * checks a refusal (shared by the tests of each sub-command).
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert } from "@effect/vitest"

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))

/** What a `corps` run left. */
export interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** `corps …` from the sources, with `env` instead of the CORPS_* variables of this process. */
export const corps = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Promise<Ran> =>
  new Promise((resolve) => {
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CORPS_")))
    execFile(
      process.execPath,
      [main, ...args],
      { env: { ...inherited, ...env }, timeout: 30_000, killSignal: "SIGKILL" },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })
    )
  })

/** A refusal: exit code 1, the message on stderr, no stack trace, no help dump. */
export const assertRefused = (ran: Ran, message: string) => {
  assert.strictEqual(ran.code, 1, ran.stderr)
  assert.include(ran.stderr, message)
  assert.notMatch(ran.stderr, /^\s+at /m, "a stack trace")
  assert.notInclude(ran.stdout, "USAGE")
}

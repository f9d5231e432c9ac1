/**
 * The secret reading shared by `corps runner`, `corps host` and `corps call`
 * (src/cli/secret.ts): a trailing newline is not part of the secret, an empty
 * or unreadable file is refused naming it, and a secret given twice is refused.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeFileSystem } from "@effect/platform-node"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readSecretFile, secretFileUnlessVariable } from "../../src/cli/secret.ts"

const dir = mkdtempSync(join(tmpdir(), "corps-secret-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const file = (name: string, text: string): string => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

describe("cli secret", () => {
  it.effect("reads a file without its trailing newline (LF or CRLF), keeping inner ones", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* readSecretFile(file("lf", "s3cret\n")), "s3cret")
      assert.strictEqual(yield* readSecretFile(file("crlf", "s3cret\r\n")), "s3cret")
      assert.strictEqual(yield* readSecretFile(file("inner", "a\nb\n")), "a\nb")
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.effect("refuses an empty file and an absent one, naming the path", () =>
    Effect.gen(function* () {
      const empty = file("empty", "\n")
      assert.strictEqual(yield* Effect.flip(readSecretFile(empty)), `the secret file ${empty} is empty`)
      const absent = join(dir, "absent")
      assert.include(yield* Effect.flip(readSecretFile(absent)), `cannot read the secret file ${absent}: `)
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.effect("refuses a file when the variable is set too, without reading it", () =>
    Effect.gen(function* () {
      const absent = join(dir, "never-read")
      assert.strictEqual(
        yield* Effect.flip(secretFileUnlessVariable("CORPS_X_SECRET", true, absent)),
        `the secret is given twice (CORPS_X_SECRET and the file ${absent}): set only one`
      )
      assert.strictEqual(yield* secretFileUnlessVariable("CORPS_X_SECRET", false, file("one", "x\n")), "x")
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )
})

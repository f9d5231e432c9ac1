/**
 * The secret reading shared by the `corps` commands, the `host` Env and
 * ExtCorps (src/internal/secret.ts): a trailing newline is not part of the secret, an empty
 * or unreadable file is refused naming it, and a secret given twice is refused.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readSecretFile, secretFileUnlessVariable, secretOfOptions } from "../../src/internal/secret.ts"

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
    })
  )

  it.effect("refuses an empty file and an absent one, naming the path", () =>
    Effect.gen(function* () {
      const empty = file("empty", "\n")
      assert.strictEqual(yield* Effect.flip(readSecretFile(empty)), `the secret file ${empty} is empty`)
      const absent = join(dir, "absent")
      assert.include(yield* Effect.flip(readSecretFile(absent)), `cannot read the secret file ${absent}: `)
    })
  )

  it.effect("refuses a file when the variable is set too, without reading it", () =>
    Effect.gen(function* () {
      const absent = join(dir, "never-read")
      assert.strictEqual(
        yield* Effect.flip(secretFileUnlessVariable("CORPS_X_SECRET", true, absent)),
        `the secret is given twice (CORPS_X_SECRET and the file ${absent}): set only one`
      )
      assert.strictEqual(yield* secretFileUnlessVariable("CORPS_X_SECRET", false, file("one", "x\n")), "x")
    })
  )
})

describe("secret of Corps.serve / Corps.connect options", () => {
  it.effect("takes exactly one of secret and secretFile", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* secretOfOptions({ secret: "s" }), "s")
      assert.strictEqual(yield* secretOfOptions({ secretFile: file("opt", "f\n") }), "f")
      assert.strictEqual(
        yield* Effect.flip(secretOfOptions({ secret: "s", secretFile: file("both", "f") })),
        "give secret or secretFile, not both"
      )
      assert.strictEqual(yield* Effect.flip(secretOfOptions({ secret: "" })), "no secret: give secret or secretFile")
      assert.strictEqual(yield* Effect.flip(secretOfOptions({})), "no secret: give secret or secretFile")
    })
  )
})

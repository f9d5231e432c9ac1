/**
 * Where a shared secret is read from: a value (an environment variable, an
 * option) or a file, never a flag, so it never shows in a process list. One
 * copy for `corps runner`, `corps host`, `corps call`, the `host` Env and
 * `Corps.serve` / `Corps.connect`; each maps the reason string into its own
 * typed error.
 */
import { readFileSync } from "node:fs"
import { Effect } from "effect"
import { messageOf } from "./message.ts"

/**
 * Reads a secret file. A file written by an editor or `echo` ends with a
 * newline that is not part of the secret; an empty secret is refused.
 */
export const readSecretFile = (path: string): Effect.Effect<string, string> =>
  Effect.suspend(() => {
    let text: string
    try {
      text = readFileSync(path, "utf8")
    } catch (error) {
      return Effect.fail(`cannot read the secret file ${path}: ${messageOf(error)}`)
    }
    const secret = text.replace(/\r?\n$/, "")
    return secret.length === 0 ? Effect.fail(`the secret file ${path} is empty`) : Effect.succeed(secret)
  })

/**
 * Reads the secret file at `path`, refusing it when `variable` is set too
 * (`variableSet`): a secret given twice is a mistake to report, not to resolve.
 */
export const secretFileUnlessVariable = (
  variable: string,
  variableSet: boolean,
  path: string
): Effect.Effect<string, string> =>
  variableSet
    ? Effect.fail(`the secret is given twice (${variable} and the file ${path}): set only one`)
    : readSecretFile(path)

/** The secret of `Corps.serve` / `Corps.connect` options: `secret` or `secretFile`, exactly one. */
export const secretOfOptions = (options: {
  readonly secret?: string | undefined
  readonly secretFile?: string | undefined
}): Effect.Effect<string, string> => {
  if (options.secret !== undefined && options.secretFile !== undefined)
    return Effect.fail("give secret or secretFile, not both")
  if (options.secretFile !== undefined) return readSecretFile(options.secretFile)
  if (options.secret === undefined || options.secret.length === 0)
    return Effect.fail("no secret: give secret or secretFile")
  return Effect.succeed(options.secret)
}

/**
 * Where the `corps` sub-commands read a shared secret from: an environment
 * variable or a file, never a flag, so it never shows in a process list.
 * One copy for `corps runner`, `corps host` and `corps call`; each maps the
 * reason string into its own start error.
 */
import { Effect, FileSystem } from "effect"

/**
 * Reads a secret file. A file written by an editor or `echo` ends with a
 * newline that is not part of the secret; an empty secret is refused.
 */
export const readSecretFile = (path: string): Effect.Effect<string, string, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(path)
      .pipe(Effect.mapError((error) => `cannot read the secret file ${path}: ${error.message}`))
    const secret = text.replace(/\r?\n$/, "")
    if (secret.length === 0) return yield* Effect.fail(`the secret file ${path} is empty`)
    return secret
  })

/**
 * Reads the secret file at `path`, refusing it when `variable` is set too
 * (`variableSet`): a secret given twice is a mistake to report, not to resolve.
 */
export const secretFileUnlessVariable = (
  variable: string,
  variableSet: boolean,
  path: string
): Effect.Effect<string, string, FileSystem.FileSystem> =>
  variableSet
    ? Effect.fail(`the secret is given twice (${variable} and the file ${path}): set only one`)
    : readSecretFile(path)

/**
 * Reads the import specifiers of one shipped file, and decides how Node
 * loads it (its module format).
 *
 * A TypeScript file is first stripped of its types by Node's own
 * `stripTypeScriptTypes` — the very transform Node applies when it runs the
 * file — so the specifiers found are exactly the ones Node will ask for:
 * `import type` and `export type` vanish, while `import { type A } from "./a.ts"`
 * stays as `import {} from "./a.ts"` and still loads `./a.ts` (TypeScript's
 * `verbatimModuleSyntax` rule). The JavaScript is then lexed by
 * `es-module-lexer`, which tells a regular expression from a division and
 * skips comments, strings and template literals (docs/decisions.md).
 */
import { readFileSync } from "node:fs"
import { stripTypeScriptTypes } from "node:module"
import { dirname, join } from "node:path"
import { initSync, parse } from "es-module-lexer"

/** The module formats a shipped file is loaded with (names of Node's load hooks). */
export type Format = "module" | "module-typescript" | "json"

/** What `classify` decided: a format, or why the file cannot be shipped. */
export type Classified =
  | { readonly _tag: "Code"; readonly format: "module" | "module-typescript"; readonly typescript: boolean }
  | { readonly _tag: "Json" }
  | { readonly _tag: "Unsupported"; readonly detail: string }

let lexerReady = false

/**
 * Strips the types of `code` with Node's transform. Node warns once per
 * process that the function is experimental; a library has no business
 * printing that warning into its user's output, so that one warning is
 * dropped while the call runs.
 */
const strip = (code: string): string => {
  const emit = process.emitWarning
  process.emitWarning = ((warning: string | Error, ...rest: Array<unknown>) => {
    const text = typeof warning === "string" ? warning : warning.message
    if (text.includes("stripTypeScriptTypes")) return
    return (emit as (...args: Array<unknown>) => void).call(process, warning, ...rest)
  }) as typeof process.emitWarning
  try {
    return stripTypeScriptTypes(code, { mode: "strip" })
  } finally {
    process.emitWarning = emit
  }
}

/**
 * The specifiers `code` imports: static imports, `export … from`, and
 * dynamic `import()` of a string literal. A dynamic import of a computed
 * value cannot be followed and is left out. Throws where the lexer cannot
 * read the code (an unterminated string, template or comment) and where
 * type stripping refuses it (an `enum`).
 */
export const specifiersOf = (
  code: string,
  typescript: boolean
): { readonly specifiers: ReadonlyArray<string>; readonly hasModuleSyntax: boolean } => {
  if (!lexerReady) {
    initSync()
    lexerReady = true
  }
  const js = typescript ? strip(code) : code
  const [imports, , , hasModuleSyntax] = parse(js)
  const specifiers: Array<string> = []
  for (const i of imports) {
    // `d === -2` is `import.meta`; `n` is undefined for a computed dynamic import.
    if (i.d === -2 || i.n === undefined) continue
    specifiers.push(i.n)
  }
  return { specifiers, hasModuleSyntax }
}

/**
 * The `type` fields of package.json files by folder, for one collection
 * (a long-lived caller must see a package.json edited between two).
 */
export type PackageTypes = Map<string, string | undefined>

/** The `type` field of the package.json nearest to `dir` (Node's rule for `.js` and `.ts`). */
const packageTypeOf = (dir: string, types: PackageTypes): string | undefined => {
  if (types.has(dir)) return types.get(dir)
  let type: string | undefined
  let found = false
  try {
    const json = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { type?: unknown }
    type = typeof json.type === "string" ? json.type : undefined
    found = true
  } catch {
    // No package.json here (or an unreadable one, which Node would skip too): look further up.
  }
  if (!found) {
    const parent = dirname(dir)
    type = parent === dir ? undefined : packageTypeOf(parent, types)
  }
  types.set(dir, type)
  return type
}

/**
 * How Node would load the file at `path`, decided as Node does: by its
 * extension, and for `.js`/`.ts` by the nearest package.json's `type`
 * (without one, by whether the file has `import`/`export` syntax, which
 * `hasModuleSyntax` tells once the file is lexed). CommonJS is refused:
 * the child loads shipped files as ES modules only.
 */
export const classify = (path: string, types: PackageTypes): Classified => {
  const dot = path.lastIndexOf(".")
  const ext = dot > path.lastIndexOf("/") ? path.slice(dot) : ""
  switch (ext) {
    case ".json":
      return { _tag: "Json" }
    case ".mjs":
      return { _tag: "Code", format: "module", typescript: false }
    case ".mts":
      return { _tag: "Code", format: "module-typescript", typescript: true }
    case ".js":
    case ".ts": {
      const type = packageTypeOf(dirname(path), types)
      if (type === "commonjs") {
        return { _tag: "Unsupported", detail: `a CommonJS file (its package.json says "type": "commonjs")` }
      }
      return ext === ".ts"
        ? { _tag: "Code", format: "module-typescript", typescript: true }
        : { _tag: "Code", format: "module", typescript: false }
    }
    case ".cjs":
    case ".cts":
      return { _tag: "Unsupported", detail: "a CommonJS file: only ES modules are shipped" }
    default:
      return {
        _tag: "Unsupported",
        detail: `Node cannot import a ${ext === "" ? "file without an extension" : `${ext} file`} as a module`
      }
  }
}

/**
 * Whether a `.js`/`.ts` file without a package `type` would be run as
 * CommonJS by Node's syntax detection.
 */
export const isUntypedCommonJs = (path: string, hasModuleSyntax: boolean, types: PackageTypes): boolean =>
  !hasModuleSyntax &&
  (path.endsWith(".js") || path.endsWith(".ts")) &&
  packageTypeOf(dirname(path), types) === undefined

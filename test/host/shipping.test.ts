/**
 * Code shipping on real files in temporary directories: collecting a
 * program's module graph, the daemon's content-addressed cache, the package
 * check, and a child process that runs a program whose files were deleted,
 * from the cache alone.
 */
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Shipping from "../../src/host/shipping.ts"

const made: Array<string> = []
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

const tempDir = (): string => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), "corps-ship-")))
  made.push(dir)
  return dir
}

/** Writes `files` under a fresh directory (with a `"type": "module"` package.json unless `untyped`). */
const program = (files: Record<string, string>, options?: { readonly untyped?: boolean }) => {
  const dir = tempDir()
  if (options?.untyped !== true) writeFileSync(join(dir, "package.json"), '{ "type": "module" }')
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  return { dir, url: (name: string) => pathToFileURL(join(dir, name)).href }
}

/** The shipped files' paths relative to `dir`, sorted. */
const shippedNames = (manifest: Shipping.Manifest, dir: string): Array<string> =>
  manifest.files.map((f) => fileURLToPath(f.url).slice(dir.length + 1)).sort()

const repoRoot = fileURLToPath(new URL("../../", import.meta.url))

describe("collect", () => {
  it.effect("follows a chain of relative .ts imports, and ../ paths", () =>
    Effect.gen(function* () {
      const p = program({
        "app/main.ts": `import { a } from "./a.ts"\nexport const main = (): number => a + 1\n`,
        "app/a.ts": `import { b } from "./sub/b.ts"\nexport const a: number = b * 2\n`,
        "app/sub/b.ts": `export { c as b } from "../../shared/c.ts"\n`,
        "shared/c.ts": `export const c = 20\n`,
        "app/unused.ts": `export const never = 0\n`
      })
      const { manifest } = yield* Shipping.collect(p.url("app/main.ts"))
      assert.deepStrictEqual(shippedNames(manifest, p.dir), ["app/a.ts", "app/main.ts", "app/sub/b.ts", "shared/c.ts"])
      assert.strictEqual(manifest.entry, p.url("app/main.ts"))
      assert.deepStrictEqual(
        manifest.files.map((f) => f.format),
        ["module-typescript", "module-typescript", "module-typescript", "module-typescript"]
      )
      assert.deepStrictEqual(manifest.packages, [])
      assert.match(manifest.hash, /^[0-9a-f]{64}$/)
    })
  )

  it.effect("does not need erased type-only imports, but keeps an import whose names are all types", () =>
    Effect.gen(function* () {
      const p = program({
        "main.ts": [
          `import type { Gone } from "./gone.ts"`,
          `export type { AlsoGone } from "./alsoGone.ts"`,
          `import { type Kept } from "./kept.ts"`,
          `import { real, type Shape } from "./real.ts"`,
          `export const f = (s: Shape, k?: Kept): Gone | number => real + s.n`,
          ``
        ].join("\n"),
        "kept.ts": `export type Kept = string\n`,
        "real.ts": `export interface Shape { n: number }\nexport const real = 1\n`
      })
      const { manifest } = yield* Shipping.collect(p.url("main.ts"))
      // Node's type stripping turns `import { type Kept } from "./kept.ts"` into `import {} from "./kept.ts"`:
      // the file is loaded at run time, so it is shipped.
      assert.deepStrictEqual(shippedNames(manifest, p.dir), ["kept.ts", "main.ts", "real.ts"])
    })
  )

  it.effect("follows a dynamic import of a string literal, not one of a computed name", () =>
    Effect.gen(function* () {
      const p = program({
        "main.ts": [
          `const name: string = "./computed.ts"`,
          `export const load = async () => [await import("./dynamic.ts"), await import(name)]`,
          ``
        ].join("\n"),
        "dynamic.ts": `export const d = 1\n`,
        "computed.ts": `export const c = 1\n`
      })
      const { manifest } = yield* Shipping.collect(p.url("main.ts"))
      assert.deepStrictEqual(shippedNames(manifest, p.dir), ["dynamic.ts", "main.ts"])
    })
  )

  it.effect("ships JSON imported with attributes, and plain .js/.mjs modules", () =>
    Effect.gen(function* () {
      const p = program({
        "main.ts": `import data from "./data.json" with { type: "json" }\nimport { x } from "./lib.js"\nexport const v = data.n + x\n`,
        "lib.js": `export { y as x } from "./deep.mjs"\n`,
        "deep.mjs": `export const y = 2\n`,
        "data.json": `{ "n": 40 }`
      })
      const { manifest } = yield* Shipping.collect(p.url("main.ts"))
      assert.deepStrictEqual(
        manifest.files.map((f) => [fileURLToPath(f.url).slice(p.dir.length + 1), f.format]),
        [
          ["data.json", "json"],
          ["deep.mjs", "module"],
          ["lib.js", "module"],
          ["main.ts", "module-typescript"]
        ]
      )
    })
  )

  it.effect("ships each file of an import cycle once", () =>
    Effect.gen(function* () {
      const p = program({
        "a.ts": `import { b } from "./b.ts"\nexport const a = () => b()\n`,
        "b.ts": `import { a } from "./a.ts"\nimport { c } from "./c.ts"\nexport const b = () => (c ? 1 : a())\n`,
        "c.ts": `import "./a.ts"\nimport "./b.ts"\nexport const c = true\n`
      })
      const { manifest } = yield* Shipping.collect(p.url("a.ts"))
      assert.deepStrictEqual(shippedNames(manifest, p.dir), ["a.ts", "b.ts", "c.ts"])
    })
  )

  it.effect("ignores imports written in comments, strings, templates, regular expressions and types", () =>
    Effect.gen(function* () {
      const p = program({
        "main.ts": [
          `// import "./nope1.ts"`,
          `/* import x from "./nope2.ts"`,
          `   export * from "./nope3.ts" */`,
          `const s = 'import "./nope4.ts"'`,
          `const d = "export { x } from './nope5.ts'"`,
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a template literal
          'const t = `import("./nope6.ts") ${s.length}`',
          // A regular expression holding a quote: a scanner that took it for a string would swallow what follows.
          `const r = /"import('.\\/nope7.ts')/g`,
          `const half = 10 / 2 / 1`,
          `type T = Array<"./nope8.ts">`,
          `const u: T = []`,
          `export const load = () => import("./real.ts")`,
          `export const all = [s, d, t, r, half, u]`,
          ``
        ].join("\n"),
        "real.ts": `export const real = true\n`
      })
      const { manifest } = yield* Shipping.collect(p.url("main.ts"))
      assert.deepStrictEqual(shippedNames(manifest, p.dir), ["main.ts", "real.ts"])
    })
  )

  it.effect("lists bare imports as packages by name, and leaves builtins to the host", () =>
    Effect.gen(function* () {
      const p = program({
        "main.ts": [
          `import { Effect } from "effect"`,
          `import * as Schema from "effect/Schema"`,
          `import * as NodeRuntime from "@effect/platform-node/NodeRuntime"`,
          `import { readFileSync } from "node:fs"`,
          `import { join } from "path"`,
          `import { z } from "./z.ts"`,
          `export const all = [Effect, Schema, NodeRuntime, readFileSync, join, z]`,
          ``
        ].join("\n"),
        "z.ts": `export { Corps as z } from "effect-corps"\n`
      })
      const { manifest } = yield* Shipping.collect(p.url("main.ts"))
      assert.deepStrictEqual(manifest.packages, ["@effect/platform-node", "effect", "effect-corps"])
      // None is installed beside this temporary program: no version to record.
      assert.deepStrictEqual(manifest.packageVersions, {})
    })
  )

  it.effect("collects the test fixtures' Workers module, reaching the library's sources relatively", () =>
    Effect.gen(function* () {
      const { manifest, source } = yield* Shipping.collect(
        pathToFileURL(join(repoRoot, "test/fixtures/workers.ts")).href
      )
      const names = shippedNames(manifest, repoRoot.replace(/\/$/, ""))
      assert.include(names, "test/fixtures/workers.ts")
      assert.include(names, "src/index.ts")
      assert.include(names, "src/Worker.ts")
      assert.include(manifest.packages, "effect")
      const effectVersion = JSON.parse(readFileSync(join(repoRoot, "node_modules/effect/package.json"), "utf8")).version
      assert.strictEqual(manifest.packageVersions?.["effect"], effectVersion)
      for (const f of manifest.files) {
        assert.deepStrictEqual(source(f.hash), new Uint8Array(readFileSync(fileURLToPath(f.url))))
      }
      assert.strictEqual(source("0".repeat(64)), undefined)
    })
  )

  it.effect("names files by their real path, as Node does, so a file reached through a symbolic link ships once", () =>
    Effect.gen(function* () {
      const p = program({
        "main.ts": `import { x } from "./lib/x.ts"\nimport { x as y } from "./impl/x.ts"\nexport const m = x === y\n`,
        "impl/x.ts": `export const x = {}\n`
      })
      symlinkSync(join(p.dir, "impl"), join(p.dir, "lib"))
      symlinkSync(join(p.dir, "main.ts"), join(p.dir, "entry.ts"))
      const { manifest } = yield* Shipping.collect(p.url("entry.ts"))
      assert.strictEqual(manifest.entry, p.url("main.ts"))
      assert.deepStrictEqual(shippedNames(manifest, p.dir), ["impl/x.ts", "main.ts"])
    })
  )

  it.live(
    "prints nothing in the caller's process (not Node's warning that type stripping is experimental)",
    () =>
      Effect.gen(function* () {
        const p = program({ "main.ts": `import type { T } from "./t.ts"\nexport const m: T | number = 1\n` })
        const script = fileURLToPath(new URL("./fixtures/collectOnce.ts", import.meta.url))
        const { code, stderr, stdout } = yield* Effect.callback<{
          code: number | null
          stdout: string
          stderr: string
        }>((resume) => {
          execFile(
            process.execPath,
            [script, p.url("main.ts")],
            { timeout: 60_000, killSignal: "SIGKILL" },
            (error, stdout, stderr) => {
              const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
              resume(Effect.succeed({ code, stdout, stderr }))
            }
          )
        })
        assert.strictEqual(code, 0, stderr)
        assert.strictEqual(stdout, "1\n")
        assert.strictEqual(stderr, "")
      }),
    60_000
  )

  it.effect("fails with Unreadable naming the missing file and its importer", () =>
    Effect.gen(function* () {
      const p = program({ "main.ts": `import "./lib.ts"\n`, "lib.ts": `export * from "./missing.ts"\n` })
      const error = yield* Effect.flip(Shipping.collect(p.url("main.ts")))
      assert.strictEqual(error._tag, "ShippingError")
      assert.strictEqual(error.reason, "Unreadable")
      assert.strictEqual(error.file, p.url("missing.ts"))
      assert.include(error.detail, `imported by ${p.url("lib.ts")}`)
    })
  )

  it.effect("refuses what cannot be shipped: CommonJS, #subpath imports, unknown extensions", () =>
    Effect.gen(function* () {
      const cjs = program({ "main.ts": `import "./old.cjs"\n`, "old.cjs": `module.exports = 1\n` })
      const e1 = yield* Effect.flip(Shipping.collect(cjs.url("main.ts")))
      assert.deepStrictEqual([e1.reason, e1.file], ["Unsupported", cjs.url("old.cjs")])

      const sub = program({ "main.ts": `import "#internal/x"\n` })
      const e2 = yield* Effect.flip(Shipping.collect(sub.url("main.ts")))
      assert.deepStrictEqual([e2.reason, e2.file], ["Unsupported", sub.url("main.ts")])
      assert.include(e2.detail, "#internal/x")

      const txt = program({ "main.ts": `import "./notes.txt"\n`, "notes.txt": "hello" })
      const e3 = yield* Effect.flip(Shipping.collect(txt.url("main.ts")))
      assert.deepStrictEqual([e3.reason, e3.file], ["Unsupported", txt.url("notes.txt")])

      // No "type" in any package.json and no import/export: Node would run it as CommonJS.
      const untyped = program(
        { "main.js": `import "./script.js"\n`, "script.js": `require("fs")\n` },
        { untyped: true }
      )
      const e4 = yield* Effect.flip(Shipping.collect(untyped.url("main.js")))
      assert.deepStrictEqual([e4.reason, e4.file], ["Unsupported", untyped.url("script.js")])

      const typedCjs = program({ "main.js": `module.exports = 1\n` }, { untyped: true })
      writeFileSync(join(typedCjs.dir, "package.json"), '{ "type": "commonjs" }')
      const e5 = yield* Effect.flip(Shipping.collect(typedCjs.url("main.js")))
      assert.deepStrictEqual([e5.reason, e5.file], ["Unsupported", typedCjs.url("main.js")])
    })
  )

  it.effect("fails with Unparsable on a file the lexer cannot read and on TypeScript that type stripping refuses", () =>
    Effect.gen(function* () {
      const p = program({
        "main.ts": `import "./broken.js"\nimport "./enum.ts"\n`,
        // An unterminated template: the lexer stops there (it is not a full parser; a subtler syntax error
        // surfaces when the child imports the file).
        "broken.js": "export const t = `abc\n",
        "enum.ts": `export enum Color { Red }\n`
      })
      const e1 = yield* Effect.flip(Shipping.collect(p.url("broken.js")))
      assert.deepStrictEqual([e1.reason, e1.file], ["Unparsable", p.url("broken.js")])
      const e2 = yield* Effect.flip(Shipping.collect(p.url("enum.ts")))
      assert.deepStrictEqual([e2.reason, e2.file], ["Unparsable", p.url("enum.ts")])
    })
  )

  it.effect("fails with TooLarge past a file, program or file-count limit", () =>
    Effect.gen(function* () {
      const p = program({
        "main.ts": `import "./a.ts"\nimport "./b.ts"\n`,
        "a.ts": `export const a = "${"x".repeat(2000)}"\n`,
        "b.ts": `export const b = "${"y".repeat(2000)}"\n`
      })
      const e1 = yield* Effect.flip(Shipping.collect(p.url("main.ts"), { maxFileBytes: 1000 }))
      assert.strictEqual(e1.reason, "TooLarge")
      assert.include([p.url("a.ts"), p.url("b.ts")], e1.file)
      const e2 = yield* Effect.flip(Shipping.collect(p.url("main.ts"), { maxTotalBytes: 3000 }))
      assert.deepStrictEqual([e2.reason, e2.file], ["TooLarge", p.url("main.ts")])
      const e3 = yield* Effect.flip(Shipping.collect(p.url("main.ts"), { maxFiles: 2 }))
      assert.deepStrictEqual([e3.reason, e3.file], ["TooLarge", p.url("main.ts")])
      const ok = yield* Shipping.collect(p.url("main.ts"), { maxFileBytes: 3000, maxTotalBytes: 5000, maxFiles: 3 })
      assert.strictEqual(ok.manifest.files.length, 3)
    })
  )
})

describe("manifest hash", () => {
  it.effect("is stable, and changes with any file's bytes (only that file's hash changes)", () =>
    Effect.gen(function* () {
      const p = program({
        "main.ts": `import { a } from "./a.ts"\nexport const m = a\n`,
        "a.ts": `export const a = 1\n`
      })
      const first = (yield* Shipping.collect(p.url("main.ts"))).manifest
      const again = (yield* Shipping.collect(p.url("main.ts"))).manifest
      assert.deepStrictEqual(again, first)
      yield* Shipping.verifyManifest(first)

      writeFileSync(join(p.dir, "a.ts"), `export const a = 2\n`)
      const edited = (yield* Shipping.collect(p.url("main.ts"))).manifest
      assert.notStrictEqual(edited.hash, first.hash)
      const changed = edited.files.filter((f, i) => f.hash !== first.files[i]?.hash).map((f) => f.url)
      assert.deepStrictEqual(changed, [p.url("a.ts")])

      // The same bytes under other URLs are another program: shipped files keep their URLs.
      const moved = program({
        "main.ts": `import { a } from "./a.ts"\nexport const m = a\n`,
        "a.ts": `export const a = 1\n`
      })
      const elsewhere = (yield* Shipping.collect(moved.url("main.ts"))).manifest
      assert.notStrictEqual(elsewhere.hash, first.hash)
      assert.deepStrictEqual(
        elsewhere.files.map((f) => f.hash),
        first.files.map((f) => f.hash)
      )
    })
  )

  it.effect("verifyManifest and decodeManifest refuse a manifest whose content does not match its hash", () =>
    Effect.gen(function* () {
      const p = program({ "main.ts": `export const m = 1\n` })
      const { manifest } = yield* Shipping.collect(p.url("main.ts"))
      const tampered = { ...manifest, entry: p.url("other.ts") }
      const e1 = yield* Effect.flip(Shipping.verifyManifest(tampered))
      assert.deepStrictEqual([e1.reason, e1.file], ["HashMismatch", "manifest"])
      const e2 = yield* Effect.flip(Shipping.verifyManifest(manifest, "f".repeat(64)))
      assert.deepStrictEqual([e2.reason, e2.file], ["HashMismatch", "manifest"])
      const decoded = yield* Shipping.decodeManifest(JSON.parse(JSON.stringify(manifest)), manifest.hash)
      assert.deepStrictEqual(decoded, manifest)
      const e3 = yield* Effect.flip(Shipping.decodeManifest({ entry: 1 }))
      assert.deepStrictEqual([e3.reason, e3.file], ["Invalid", "manifest"])
      // A crafted manifest, consistent with its own hash, whose file "hash" would name a path outside the cache.
      const files = [{ ...manifest.files[0]!, hash: "../../../etc/passwd" }]
      const crafted = { ...manifest, files, hash: Shipping.manifestHash(manifest.entry, files) }
      const e4 = yield* Effect.flip(Shipping.decodeManifest(crafted))
      assert.deepStrictEqual([e4.reason, e4.file], ["Invalid", manifest.entry])
      assert.throws(() => Shipping.installLoader(tempDir(), crafted), /Invalid/)
    })
  )
})

describe("cache", () => {
  const bytesOf = (text: string) => new TextEncoder().encode(text)
  const hashOf = (text: string) => Effect.sync(() => createHash("sha256").update(text).digest("hex"))

  it.effect("reports missing hashes, stores verified bytes, and reads them back", () =>
    Effect.gen(function* () {
      const cache = yield* Shipping.openCache(join(tempDir(), "cache"))
      const one = "export const one = 1\n"
      const two = "export const two = 2\n"
      const [h1, h2] = [yield* hashOf(one), yield* hashOf(two)]
      assert.deepStrictEqual(cache.missing([h1, h2, h1]), [h1, h2])
      yield* cache.put(h1, bytesOf(one))
      assert.deepStrictEqual(cache.missing([h1, h2]), [h2])
      yield* cache.put(h1, bytesOf(one)) // again: the same bytes replace themselves
      assert.deepStrictEqual(new TextDecoder().decode(yield* cache.read(h1)), one)
      const missing = yield* Effect.flip(cache.read(h2))
      assert.deepStrictEqual([missing.reason, missing.file], ["Missing", h2])
      // Reopening finds what was stored.
      const reopened = yield* Shipping.openCache(cache.dir)
      assert.deepStrictEqual(reopened.missing([h1, h2]), [h2])
    })
  )

  it.effect("refuses bytes that do not match their hash, malformed hashes and oversized files", () =>
    Effect.gen(function* () {
      const cache = yield* Shipping.openCache(join(tempDir(), "cache"), { maxFileBytes: 64 })
      const h = yield* hashOf("export const a = 1\n")
      const mismatch = yield* Effect.flip(cache.put(h, bytesOf("export const a = 2\n")))
      assert.deepStrictEqual([mismatch.reason, mismatch.file], ["HashMismatch", h])
      assert.deepStrictEqual(cache.missing([h]), [h])

      const traversal = "../../etc/passwd"
      assert.deepStrictEqual(cache.missing([traversal]), [traversal])
      const invalid = yield* Effect.flip(cache.put(traversal, bytesOf("x")))
      assert.deepStrictEqual([invalid.reason, invalid.file], ["Invalid", traversal])
      assert.strictEqual((yield* Effect.flip(cache.read(traversal))).reason, "Invalid")

      const big = `export const s = "${"z".repeat(100)}"\n`
      const tooLarge = yield* Effect.flip(cache.put(yield* hashOf(big), bytesOf(big)))
      assert.strictEqual(tooLarge.reason, "TooLarge")
    })
  )

  it.effect("detects an object altered in the cache, and lets it be shipped again", () =>
    Effect.gen(function* () {
      const cache = yield* Shipping.openCache(join(tempDir(), "cache"))
      const text = "export const a = 1\n"
      const h = yield* hashOf(text)
      yield* cache.put(h, bytesOf(text))
      writeFileSync(join(cache.dir, "objects", h), "export const a = 666\n")
      const error = yield* Effect.flip(cache.read(h))
      assert.deepStrictEqual([error.reason, error.file], ["HashMismatch", h])
      // `missing` only looks for the file; `verify` reads it, removes it, and asks for it again.
      const absent = "d".repeat(64)
      assert.deepStrictEqual(cache.missing([h, absent]), [absent])
      assert.deepStrictEqual(yield* cache.verify([h, absent]), [h, absent])
      assert.strictEqual(existsSync(join(cache.dir, "objects", h)), false)
      yield* cache.put(h, bytesOf(text))
      assert.deepStrictEqual(yield* cache.verify([h, absent]), [absent])
      // `put` replaces a damaged object even when it is present.
      writeFileSync(join(cache.dir, "objects", h), "export const a = 667\n")
      yield* cache.put(h, bytesOf(text))
      assert.strictEqual(new TextDecoder().decode(yield* cache.read(h)), text)
    })
  )

  it.effect("removes what a killed writer left in tmp over an hour ago, and nothing younger", () =>
    Effect.gen(function* () {
      const dir = join(tempDir(), "cache")
      mkdirSync(join(dir, "tmp"), { recursive: true })
      writeFileSync(join(dir, "tmp", "old.1"), "half")
      const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000)
      utimesSync(join(dir, "tmp", "old.1"), twoHoursAgo, twoHoursAgo)
      writeFileSync(join(dir, "tmp", "young.2"), "being written")
      yield* Shipping.openCache(dir)
      assert.deepStrictEqual(readdirSync(join(dir, "tmp")), ["young.2"])
    })
  )

  it.live("concurrent puts of one file all succeed, and a concurrent reader never sees half of it", () =>
    Effect.gen(function* () {
      const dir = join(tempDir(), "cache")
      // Two caches on one directory: two daemons' connections shipping the same program at once.
      const [c1, c2] = [yield* Shipping.openCache(dir), yield* Shipping.openCache(dir)]
      const text = `export const big = "${"b".repeat(4 * 1024 * 1024)}"\n`
      const bytes = bytesOf(text)
      const h = yield* hashOf(text)
      let done = false
      // Reads while the puts run: each either finds nothing yet or the whole, verified file.
      const reader = Effect.gen(function* () {
        while (!done) {
          yield* c2.read(h).pipe(
            Effect.asVoid,
            Effect.catch((error) => (error.reason === "Missing" ? Effect.void : Effect.die(error)))
          )
          yield* Effect.yieldNow
        }
      })
      const puts = Effect.forEach(
        Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? c1 : c2)),
        (cache) => cache.put(h, bytes),
        { concurrency: "unbounded" }
      ).pipe(Effect.ensuring(Effect.sync(() => (done = true))))
      yield* Effect.all([puts, reader], { concurrency: "unbounded" })
      assert.deepStrictEqual(c1.missing([h]), [])
      assert.strictEqual((yield* c1.read(h)).byteLength, bytes.byteLength)
      assert.deepStrictEqual(readdirSync(join(dir, "tmp")), [])
    })
  )

  it.effect("stores manifests by hash and gives them back checked", () =>
    Effect.gen(function* () {
      const cache = yield* Shipping.openCache(join(tempDir(), "cache"))
      const p = program({ "main.ts": `export const m = 1\n` })
      const { manifest } = yield* Shipping.collect(p.url("main.ts"))
      yield* cache.putManifest(manifest)
      assert.deepStrictEqual(yield* cache.manifest(manifest.hash), manifest)
      const absent = yield* Effect.flip(cache.manifest("a".repeat(64)))
      assert.deepStrictEqual([absent.reason, absent.file], ["Missing", "manifest"])
      const refused = yield* Effect.flip(cache.putManifest({ ...manifest, packages: ["x"], entry: p.url("x.ts") }))
      assert.strictEqual(refused.reason, "HashMismatch")
      // A manifest file renamed to another hash is refused on reading.
      const other = "b".repeat(64)
      writeFileSync(
        join(cache.dir, "manifests", `${other}.json`),
        readFileSync(join(cache.dir, "manifests", `${manifest.hash}.json`))
      )
      assert.strictEqual((yield* Effect.flip(cache.manifest(other))).reason, "HashMismatch")
    })
  )
})

describe("checkPackages", () => {
  const manifestWith = (
    packages: ReadonlyArray<string>,
    packageVersions: Record<string, string> = {}
  ): Shipping.Manifest => ({
    entry: "file:///app/main.ts",
    hash: Shipping.manifestHash("file:///app/main.ts", []),
    files: [],
    packages,
    packageVersions
  })
  const versionOf = (dir: string) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version as string

  it.effect("passes when every package resolves from the package root, the package itself included", () =>
    Effect.gen(function* () {
      const all = ["@effect/platform-node", "effect", "effect-corps"]
      assert.deepStrictEqual(yield* Shipping.checkPackages(manifestWith(all), repoRoot), [])
      // From a folder deep inside the root, node_modules is found on the way up.
      yield* Shipping.checkPackages(manifestWith(["effect"]), join(repoRoot, "src/host"))
      yield* Shipping.checkPackages(manifestWith(["effect"]))
    })
  )

  it.effect("gives back the packages whose version differs from the caller's", () =>
    Effect.gen(function* () {
      const effect = versionOf(join(repoRoot, "node_modules/effect"))
      const self = versionOf(repoRoot)
      const differences = yield* Shipping.checkPackages(
        manifestWith(["effect", "effect-corps"], { effect: "0.0.1", "effect-corps": self }),
        repoRoot
      )
      assert.deepStrictEqual(differences, [{ package: "effect", caller: "0.0.1", host: effect }])
    })
  )

  it.effect("fails with PackageMissing naming the missing package", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Shipping.checkPackages(manifestWith(["effect", "no-such-package-corps"]), repoRoot, { host: "10.0.0.2:7400" })
      )
      assert.strictEqual(error._tag, "PackageMissing")
      assert.strictEqual(error.package, "no-such-package-corps")
      assert.strictEqual(error.host, "10.0.0.2:7400")
      assert.strictEqual(error.from, repoRoot)
      assert.include(error.message, "no-such-package-corps")
      const empty = tempDir()
      assert.strictEqual(existsSync(join(empty, "node_modules")), false)
      const nothing = yield* Effect.flip(Shipping.checkPackages(manifestWith(["effect"]), empty))
      assert.deepStrictEqual([nothing.package, nothing.host], ["effect", undefined])
    })
  )
})

describe("installLoader", () => {
  it.effect("refuses a manifest with the wrong hash, another than the start request's, or files not cached", () =>
    Effect.gen(function* () {
      const p = program({ "main.ts": `export const m = 1\n` })
      const { manifest, source } = yield* Shipping.collect(p.url("main.ts"))
      const cache = yield* Shipping.openCache(join(tempDir(), "cache"))
      const thrown = (f: () => unknown): Shipping.ShippingError => {
        try {
          f()
        } catch (e) {
          assert.instanceOf(e, Shipping.ShippingError)
          return e as Shipping.ShippingError
        }
        return assert.fail("installLoader did not throw")
      }
      const missing = thrown(() => Shipping.installLoader(cache.dir, manifest))
      assert.deepStrictEqual([missing.reason, missing.file], ["Missing", p.url("main.ts")])
      yield* cache.put(manifest.files[0]!.hash, source(manifest.files[0]!.hash)!)
      const wrong = thrown(() => Shipping.installLoader(cache.dir, { ...manifest, entry: p.url("x.ts") }))
      assert.strictEqual(wrong.reason, "HashMismatch")
      const other = thrown(() => Shipping.installLoader(cache.dir, manifest, { expectedHash: "c".repeat(64) }))
      assert.strictEqual(other.reason, "HashMismatch")
    })
  )
})

describe("a child runs the shipped program from the cache alone", () => {
  const runner = fileURLToPath(new URL("./fixtures/runShipped.ts", import.meta.url))
  const workerFile = new URL("./fixtures/importInWorker.ts", import.meta.url).href
  const run = (cacheDir: string, hash: string, ...flags: ReadonlyArray<string>) =>
    Effect.callback<{ code: number | null; stdout: string; stderr: string }>((resume) => {
      execFile(
        process.execPath,
        [runner, cacheDir, hash, ...flags],
        { cwd: tmpdir(), timeout: 60_000, killSignal: "SIGKILL" },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
          resume(Effect.succeed({ code, stdout, stderr }))
        }
      )
    })

  /** Collects a two-file program importing `effect` and JSON, ships it into a fresh cache, and deletes it. */
  const shipAndDelete = Effect.gen(function* () {
    const p = program({
      "main.ts": [
        `import { Effect } from "effect"`,
        `import { triple, type Tripled } from "./lib/triple.ts"`,
        `import settings from "./settings.json" with { type: "json" }`,
        // A fragment makes another instance of the same file, in Node on the caller and so in the child.
        `import { triple as again } from "./lib/triple.ts#again"`,
        `const result: Tripled = Effect.runSync(triple(settings.base))`,
        `console.log(JSON.stringify({ result, url: import.meta.url, twoInstances: again !== triple }))`,
        ``
      ].join("\n"),
      "lib/triple.ts": [
        `import { Effect } from "effect"`,
        `export type Tripled = number`,
        `export const triple = (n: number): Effect.Effect<Tripled> => Effect.succeed(n * 3)`,
        ``
      ].join("\n"),
      "settings.json": `{ "base": 14 }`
    })
    const { manifest, source } = yield* Shipping.collect(p.url("main.ts"))
    assert.deepStrictEqual(manifest.packages, ["effect"])
    const cache = yield* Shipping.openCache(join(tempDir(), "cache"))
    for (const hash of cache.missing(manifest.files.map((f) => f.hash))) yield* cache.put(hash, source(hash)!)
    yield* cache.putManifest(manifest)
    yield* Shipping.checkPackages(manifest, repoRoot)
    rmSync(p.dir, { recursive: true, force: true })
    assert.strictEqual(existsSync(p.dir), false)
    return { manifest, cache, entry: p.url("main.ts") }
  })

  it.live(
    "imports the entry by its original URL, with effect resolved on the host",
    () =>
      Effect.gen(function* () {
        const { cache, entry, manifest } = yield* shipAndDelete
        const { code, stderr, stdout } = yield* run(cache.dir, manifest.hash)
        assert.strictEqual(code, 0, stderr)
        assert.deepStrictEqual(JSON.parse(stdout.trim()), { result: 42, url: entry, twoInstances: true })
      }),
    120_000
  )

  it.live(
    "a changed program ships again: only the edited file travels, and each manifest runs its own code",
    () =>
      Effect.gen(function* () {
        const p = program({
          "main.ts": `import { Effect } from "effect"\nimport { n } from "./n.ts"\nconsole.log(Effect.runSync(Effect.succeed(n)))\n`,
          "n.ts": `export const n: number = 1\n`
        })
        const cache = yield* Shipping.openCache(join(tempDir(), "cache"))
        const ship = Effect.gen(function* () {
          const { manifest, source } = yield* Shipping.collect(p.url("main.ts"))
          const missing = cache.missing(manifest.files.map((f) => f.hash))
          for (const hash of missing) yield* cache.put(hash, source(hash)!)
          yield* cache.putManifest(manifest)
          return { manifest, sent: missing.map((h) => manifest.files.find((f) => f.hash === h)!.url).sort() }
        })
        const v1 = yield* ship
        assert.deepStrictEqual(v1.sent, [p.url("main.ts"), p.url("n.ts")])
        writeFileSync(join(p.dir, "n.ts"), `export const n: number = 2\n`)
        const v2 = yield* ship
        assert.deepStrictEqual(v2.sent, [p.url("n.ts")])
        assert.notStrictEqual(v2.manifest.hash, v1.manifest.hash)
        rmSync(p.dir, { recursive: true, force: true })
        const r1 = yield* run(cache.dir, v1.manifest.hash)
        const r2 = yield* run(cache.dir, v2.manifest.hash)
        assert.deepStrictEqual([r1.code, r1.stdout.trim()], [0, "1"], r1.stderr)
        assert.deepStrictEqual([r2.code, r2.stdout.trim()], [0, "2"], r2.stderr)
      }),
    120_000
  )

  it.live(
    "runs a copy of the test suite's Workers module and the library sources it reaches (40-odd files)",
    () =>
      Effect.gen(function* () {
        // A copy elsewhere: its URLs are not the ones this process has loaded the library from.
        const dir = tempDir()
        writeFileSync(join(dir, "package.json"), '{ "type": "module" }')
        cpSync(join(repoRoot, "src"), join(dir, "src"), { recursive: true })
        mkdirSync(join(dir, "test/fixtures"), { recursive: true })
        cpSync(join(repoRoot, "test/fixtures/workers.ts"), join(dir, "test/fixtures/workers.ts"))
        const { manifest, source } = yield* Shipping.collect(pathToFileURL(join(dir, "test/fixtures/workers.ts")).href)
        assert.isAbove(manifest.files.length, 30)
        const cache = yield* Shipping.openCache(join(tempDir(), "cache"))
        for (const hash of cache.missing(manifest.files.map((f) => f.hash))) yield* cache.put(hash, source(hash)!)
        yield* cache.putManifest(manifest)
        yield* Shipping.checkPackages(manifest, repoRoot)
        rmSync(join(dir, "src"), { recursive: true, force: true })
        rmSync(join(dir, "test"), { recursive: true, force: true })
        const { code, stderr, stdout } = yield* run(cache.dir, manifest.hash, "--exports")
        assert.strictEqual(code, 0, stderr)
        const original = yield* Effect.promise(() => import("../fixtures/workers.ts"))
        assert.deepStrictEqual(JSON.parse(stdout.trim()), Object.keys(original).sort())
      }),
    120_000
  )

  it.live(
    "the preload installs the loader before the entry runs, in the child's worker threads too",
    () =>
      Effect.gen(function* () {
        const p = program({
          "main.ts": [
            `import { Worker } from "node:worker_threads"`,
            `import { Effect } from "effect"`,
            `import { v } from "./lib.ts"`,
            `const worker = new Worker(new URL(process.env.WORKER_FILE!), { workerData: new URL("./lib.ts", import.meta.url).href })`,
            `worker.once("message", (fromWorker) => {`,
            `  console.log(JSON.stringify({ main: Effect.runSync(Effect.succeed(v)), worker: fromWorker }))`,
            `  void worker.terminate()`,
            `})`,
            ``
          ].join("\n"),
          "lib.ts": `export const v: number = 6 * 7\n`
        })
        const { manifest, source } = yield* Shipping.collect(p.url("main.ts"))
        const cache = yield* Shipping.openCache(join(tempDir(), "cache"))
        for (const hash of cache.missing(manifest.files.map((f) => f.hash))) yield* cache.put(hash, source(hash)!)
        yield* cache.putManifest(manifest)
        rmSync(p.dir, { recursive: true, force: true })
        const start = (hash: string) =>
          Effect.callback<{ code: number | null; stdout: string; stderr: string }>((resume) => {
            execFile(
              process.execPath,
              ["--import", Shipping.preloadUrl, fileURLToPath(manifest.entry)],
              {
                cwd: tmpdir(),
                timeout: 60_000,
                killSignal: "SIGKILL",
                env: {
                  ...process.env,
                  ...Shipping.preloadEnv(cache.dir, hash, repoRoot),
                  WORKER_FILE: workerFile
                }
              },
              (error, stdout, stderr) => {
                const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
                resume(Effect.succeed({ code, stdout, stderr }))
              }
            )
          })
        const ok = yield* start(manifest.hash)
        assert.strictEqual(ok.code, 0, ok.stderr)
        assert.deepStrictEqual(JSON.parse(ok.stdout.trim()), { main: 42, worker: 42 })
        // A start request naming a manifest the cache does not hold ends the child before the program runs.
        const refused = yield* start("e".repeat(64))
        assert.notStrictEqual(refused.code, 0)
        assert.strictEqual(refused.stdout, "")
        assert.include(refused.stderr, "ShippingError")
      }),
    120_000
  )

  it.live(
    "refuses to run a file whose cached bytes were altered",
    () =>
      Effect.gen(function* () {
        const { cache, manifest } = yield* shipAndDelete
        const lib = manifest.files.find((f) => f.url.endsWith("/lib/triple.ts"))!
        writeFileSync(
          join(cache.dir, "objects", lib.hash),
          `import { Effect } from "effect"\nexport const triple = (n) => Effect.succeed(n * 4)\n`
        )
        const { code, stderr, stdout } = yield* run(cache.dir, manifest.hash)
        assert.notStrictEqual(code, 0)
        assert.strictEqual(stdout, "")
        assert.include(stderr, "HashMismatch")
        assert.include(stderr, lib.url)
      }),
    120_000
  )
})

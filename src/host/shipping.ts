/**
 * Code shipping for host daemons: a daemon runs the caller's program without
 * a copy of it (docs/hosts.md, "Code shipping").
 *
 * Three sides, one module:
 *
 * - the **caller** runs {@link collect} on its Corps module URL: the graph of
 *   files that module reaches through relative imports, each content-hashed,
 *   summed up in a {@link Manifest} whose `hash` names the whole program;
 * - the **daemon** keeps files in a content-addressed {@link Cache}
 *   ({@link openCache}): it answers which hashes it lacks
 *   ({@link Cache.missing}), stores what the caller sends ({@link Cache.put},
 *   which checks every byte against its hash), and checks that the packages
 *   the program imports are installed ({@link checkPackages});
 * - the daemon's **child** calls {@link installLoader} before importing the
 *   entry: Node's synchronous module hooks then serve the shipped files from
 *   the cache, under the caller's own URLs.
 *
 * Packages (bare specifiers such as `effect`) are never shipped: they resolve
 * from the daemon's package root, and a missing one is a
 * {@link PackageMissing} naming it. A changed program has a new manifest hash
 * and ships again (only the files whose bytes changed travel).
 *
 * The exchange, step by step (the daemon's protocol carries the messages):
 *
 * 1. caller: `const { manifest, source } = yield* collect(module)`, send `manifest`;
 * 2. daemon: `decodeManifest(received)`, answer `yield* cache.verify(hashes)`
 *    (or the cheaper `cache.missing(hashes)`);
 * 3. caller: send `source(hash)` for each; daemon: `yield* cache.put(hash, bytes)`;
 * 4. daemon: `yield* checkPackages(manifest, root, { host })`, `yield* cache.putManifest(manifest)`;
 * 5. daemon: fork the child with `execArgv: ["--import", preloadUrl]` and
 *    `preloadEnv(cache.dir, manifest.hash, root)` in its environment, and
 *    have it import `manifest.entry` (the module's real-path URL) in place of
 *    the caller's module URL.
 *
 * @since 0.4.0
 */
import { createHash, randomUUID } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { mkdir, readdir, readFile, realpath, rename, rm, stat, writeFile } from "node:fs/promises"
import { isBuiltin, registerHooks } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { Effect, Schema } from "effect"
import { messageOf } from "../internal/message.ts"
import { classify, type Format, isUntypedCommonJs, type PackageTypes, specifiersOf } from "./internal/imports.ts"
import { PackageMissing, ShippingError } from "./ShippingError.ts"

export { PackageMissing, ShippingError, ShippingErrorReason } from "./ShippingError.ts"

/**
 * One file of a shipped program: the caller's file URL, the sha256 of its
 * bytes (64 lowercase hex digits), how Node loads it, and its size.
 *
 * @since 0.4.0
 * @category models
 */
export const ShippedFile = Schema.Struct({
  url: Schema.String,
  hash: Schema.String,
  format: Schema.Literals(["module", "module-typescript", "json"]),
  size: Schema.Number
})

/**
 * @since 0.4.0
 * @category models
 */
export type ShippedFile = typeof ShippedFile.Type

/**
 * A shipped program: its `entry` (the Corps module URL), its files sorted by
 * URL, the packages it imports (names such as `effect` or `@effect/platform-node`,
 * sorted) with the versions the caller has of them, and `hash`, the sha256 of the entry and of every file's URL,
 * format and hash ({@link manifestHash}). Two programs with one hash are the
 * same code. It is a Schema so a daemon can decode it off the wire.
 *
 * @since 0.4.0
 * @category models
 */
export const Manifest = Schema.Struct({
  entry: Schema.String,
  hash: Schema.String,
  files: Schema.Array(ShippedFile),
  packages: Schema.Array(Schema.String),
  /** The version of each package as the caller resolves it (absent for one it cannot find). */
  packageVersions: Schema.optionalKey(Schema.Record(Schema.String, Schema.String))
})

/**
 * @since 0.4.0
 * @category models
 */
export type Manifest = typeof Manifest.Type

/**
 * What {@link collect} gives the caller: the manifest, and the bytes of each
 * file by hash (`undefined` for a hash not in the manifest), to send the ones
 * the daemon lacks. The bytes are those that were hashed: a file edited
 * after `collect` does not slip in.
 *
 * @since 0.4.0
 * @category models
 */
export interface Collected {
  readonly manifest: Manifest
  readonly source: (hash: string) => Uint8Array | undefined
}

/**
 * Limits of {@link collect}.
 *
 * @since 0.4.0
 * @category models
 */
export interface CollectOptions {
  /** Largest file, in bytes (default 16 MiB). */
  readonly maxFileBytes?: number | undefined
  /** Largest program, all files together, in bytes (default 128 MiB). */
  readonly maxTotalBytes?: number | undefined
  /** Most files (default 10,000). */
  readonly maxFiles?: number | undefined
}

const sha256 = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex")

const HASH = /^[0-9a-f]{64}$/

/**
 * Whether `hash` has the form of a sha256 in hex. The cache uses hashes as
 * file names, so anything else (`../x`) is refused before touching a path.
 *
 * @since 0.4.0
 * @category guards
 */
export const isHash = (hash: string): boolean => HASH.test(hash)

/**
 * The hash that names a program: sha256 over a version line, the entry, and
 * each file's URL, format and hash, in URL order. Packages are not hashed
 * (the files' bytes determine them).
 *
 * @since 0.4.0
 * @category hashing
 */
export const manifestHash = (entry: string, files: ReadonlyArray<Omit<ShippedFile, "size">>): string => {
  const lines = files.map((f) => `${f.url}\t${f.format}\t${f.hash}\n`).sort()
  return sha256(`effect-corps manifest 1\n${entry}\n${lines.join("")}`)
}

/**
 * Fails with `HashMismatch` unless the manifest's `hash` is the hash of its
 * content (and equals `expected` when given: the hash a start request names).
 *
 * @since 0.4.0
 * @category hashing
 */
export const verifyManifest = (manifest: Manifest, expected?: string): Effect.Effect<Manifest, ShippingError> =>
  Effect.suspend(() => {
    const problem = manifestProblem(manifest, expected)
    return problem === undefined ? Effect.succeed(manifest) : Effect.fail(problem)
  })

const manifestProblem = (manifest: Manifest, expected: string | undefined): ShippingError | undefined => {
  const actual = manifestHash(manifest.entry, manifest.files)
  if (actual !== manifest.hash) {
    return new ShippingError({
      reason: "HashMismatch",
      file: "manifest",
      detail: `the manifest says ${manifest.hash} but its content hashes to ${actual}`
    })
  }
  if (expected !== undefined && expected !== manifest.hash) {
    return new ShippingError({
      reason: "HashMismatch",
      file: "manifest",
      detail: `the start request names ${expected} but the manifest is ${manifest.hash}`
    })
  }
  const bad = manifest.files.find((f) => !isHash(f.hash))
  if (bad !== undefined) {
    return new ShippingError({
      reason: "Invalid",
      file: bad.url,
      detail: `${JSON.stringify(bad.hash)} is not a sha256`
    })
  }
  return undefined
}

/**
 * Decodes a manifest received from the wire and checks its hash.
 *
 * @since 0.4.0
 * @category hashing
 */
export const decodeManifest = (input: unknown, expected?: string): Effect.Effect<Manifest, ShippingError> =>
  Schema.decodeUnknownEffect(Manifest)(input).pipe(
    Effect.mapError((issue) => new ShippingError({ reason: "Invalid", file: "manifest", detail: String(issue) })),
    Effect.flatMap((manifest) => verifyManifest(manifest, expected))
  )

const isPathLike = (specifier: string): boolean =>
  specifier.startsWith("./") ||
  specifier.startsWith("../") ||
  specifier.startsWith("/") ||
  specifier.startsWith("file:") ||
  specifier === "." ||
  specifier === ".."

/** `effect/Schema` → `effect`; `@effect/platform-node/x` → `@effect/platform-node`. */
const packageName = (specifier: string): string => {
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier)
}

/** A specifier that is neither a path nor a URL nor a builtin: resolved from node_modules. */
const isBare = (specifier: string): boolean =>
  !isPathLike(specifier) && !specifier.startsWith("#") && !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(specifier)

interface Read {
  readonly url: string
  readonly bytes: Uint8Array
  readonly file: ShippedFile
  readonly imports: ReadonlyArray<string>
}

const readOne = (
  requested: string,
  importedBy: string | undefined,
  maxFileBytes: number,
  types: PackageTypes
): Effect.Effect<Read, ShippingError> =>
  Effect.gen(function* () {
    const by = importedBy === undefined ? "the Corps module" : `imported by ${importedBy}`
    const requestedPath = yield* Effect.try({
      try: () => fileURLToPath(requested),
      catch: () => new ShippingError({ reason: "Unsupported", file: requested, detail: `not a file URL (${by})` })
    })
    // Node names a module by its real path (symbolic links resolved), so the child must see that URL too.
    const path = yield* Effect.tryPromise({
      try: () => realpath(requestedPath),
      catch: (e) => new ShippingError({ reason: "Unreadable", file: requested, detail: `${messageOf(e)} (${by})` })
    })
    const real = pathToFileURL(path)
    real.search = new URL(requested).search
    const url = real.href
    const fail = (reason: ShippingError["reason"], detail: string) =>
      Effect.fail(new ShippingError({ reason, file: url, detail }))
    const kind = classify(path, types)
    if (kind._tag === "Unsupported") return yield* fail("Unsupported", `${kind.detail} (${by})`)
    const size = yield* Effect.tryPromise({
      try: () => stat(path).then((s) => (s.isFile() ? s.size : -1)),
      catch: (e) => new ShippingError({ reason: "Unreadable", file: url, detail: `${messageOf(e)} (${by})` })
    })
    if (size < 0) return yield* fail("Unreadable", `not a regular file (${by})`)
    if (size > maxFileBytes) return yield* fail("TooLarge", `${size} bytes, over the limit of ${maxFileBytes} (${by})`)
    const bytes = yield* Effect.tryPromise({
      try: () => readFile(path),
      catch: (e) => new ShippingError({ reason: "Unreadable", file: url, detail: `${messageOf(e)} (${by})` })
    })
    const hash = sha256(bytes)
    if (kind._tag === "Json") {
      return { url, bytes, file: { url, hash, format: "json", size: bytes.byteLength }, imports: [] }
    }
    const scanned = yield* Effect.try({
      try: () => specifiersOf(new TextDecoder().decode(bytes), kind.typescript),
      catch: (e) => new ShippingError({ reason: "Unparsable", file: url, detail: messageOf(e) })
    })
    if (isUntypedCommonJs(path, scanned.hasModuleSyntax, types)) {
      return yield* fail(
        "Unsupported",
        `a CommonJS file (no import or export, and no "type": "module" in its package.json) (${by})`
      )
    }
    const format: Format = kind.format
    return { url, bytes, file: { url, hash, format, size: bytes.byteLength }, imports: scanned.specifiers }
  })

/**
 * Collects the program that `moduleUrl` (a `file:` URL, usually the Corps'
 * `import.meta.url`) reaches through relative imports.
 *
 * Followed: static `import`/`export … from`, and `import("./x.ts")` with a
 * string literal, whose specifier is relative (`./`, `../`), absolute (`/`)
 * or a `file:` URL; JSON imported `with { type: "json" }` is shipped too.
 * TypeScript is read after Node's own type stripping, so `import type` and
 * `export type` need not exist. Bare specifiers become `packages`; `node:`
 * builtins are left to the host. Not followed: `import(variable)`, `require`,
 * files read at run time (`new URL("./data.txt", import.meta.url)`).
 *
 * Fails with a `ShippingError`: `Unreadable` (a file of the graph cannot be
 * read; the detail names its importer), `Unparsable`, `Unsupported`
 * (CommonJS, `#subpath` imports), `TooLarge`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Shipping from "effect-corps/host/shipping" // src/host/shipping.ts
 *
 * const program = Effect.gen(function* () {
 *   const { manifest, source } = yield* Shipping.collect(import.meta.url)
 *   // send manifest; for each hash the daemon lacks, send source(hash)
 * })
 * ```
 *
 * @since 0.4.0
 * @category caller
 */
export const collect = (moduleUrl: string, options?: CollectOptions): Effect.Effect<Collected, ShippingError> =>
  Effect.gen(function* () {
    const maxFileBytes = options?.maxFileBytes ?? 16 * 1024 * 1024
    const maxTotalBytes = options?.maxTotalBytes ?? 128 * 1024 * 1024
    const maxFiles = options?.maxFiles ?? 10_000
    const requested = yield* Effect.try({
      try: () => new URL(moduleUrl).href,
      catch: () => new ShippingError({ reason: "Unsupported", file: moduleUrl, detail: "not a URL" })
    })
    const types: PackageTypes = new Map()
    const seen = new Set<string>([requested])
    const read = new Map<string, Read>()
    const packages = new Set<string>()
    const versions: Record<string, string> = {}
    let total = 0
    let entry: string | undefined
    let level: Array<{ readonly url: string; readonly by: string | undefined }> = [{ url: requested, by: undefined }]
    while (level.length > 0) {
      // Breadth first, a level read concurrently: a graph of a few hundred files is a few levels deep.
      const results = yield* Effect.forEach(level, ({ by, url }) => readOne(url, by, maxFileBytes, types), {
        concurrency: 16
      })
      const next: typeof level = []
      for (const r of results) {
        entry ??= r.url
        // Two paths to one file through a symbolic link: one module, as in Node.
        if (read.has(r.url)) continue
        read.set(r.url, r)
        total += r.bytes.byteLength
        if (total > maxTotalBytes) {
          return yield* new ShippingError({
            reason: "TooLarge",
            file: requested,
            detail: `the program exceeds ${maxTotalBytes} bytes`
          })
        }
        for (const specifier of r.imports) {
          if (isPathLike(specifier)) {
            const target = new URL(specifier, r.url)
            target.hash = ""
            if (!seen.has(target.href)) {
              seen.add(target.href)
              next.push({ url: target.href, by: r.url })
            }
          } else if (specifier.startsWith("#")) {
            return yield* new ShippingError({
              reason: "Unsupported",
              file: r.url,
              detail: `the subpath import ${specifier} resolves through the caller's package.json, which is not shipped: import the file by a relative path`
            })
          } else if (isBare(specifier) && !isBuiltin(specifier)) {
            const name = packageName(specifier)
            if (!packages.has(name)) {
              packages.add(name)
              const version = packageVersion(name, dirname(fileURLToPath(r.url)))
              if (version !== undefined) versions[name] = version
            }
          }
          // Anything else is a URL Node resolves by itself (`node:`, `data:`) or refuses (`http:`) on the host too.
        }
      }
      if (seen.size > maxFiles) {
        return yield* new ShippingError({
          reason: "TooLarge",
          file: requested,
          detail: `the program has more than ${maxFiles} files`
        })
      }
      level = next
    }
    const files = [...read.values()].map((r) => r.file).sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0))
    const byHash = new Map<string, Uint8Array>()
    for (const r of read.values()) byHash.set(r.file.hash, r.bytes)
    const manifest: Manifest = {
      entry: entry ?? requested,
      hash: manifestHash(entry ?? requested, files),
      files,
      packages: [...packages].sort(),
      packageVersions: Object.fromEntries(Object.entries(versions).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    }
    return { manifest, source: (hash: string) => byHash.get(hash) }
  })

/**
 * A daemon's content-addressed store of shipped files, `dir/objects/<hash>`,
 * shared by every caller of the daemon (a file shipped by one caller is not
 * shipped again by another). Writes go to `dir/tmp` and are renamed into
 * place, so a reader never sees half a file, and two callers putting the
 * same file at once both succeed. Nothing is evicted: delete the directory
 * while the daemon is stopped to clear it.
 *
 * @since 0.4.0
 * @category daemon
 */
export interface Cache {
  readonly dir: string
  /** The hashes among `hashes` that the cache lacks (a malformed hash counts as lacking: `put` will refuse it). */
  readonly missing: (hashes: ReadonlyArray<string>) => ReadonlyArray<string>
  /** Stores `bytes` under `hash`, after checking that they hash to it (`HashMismatch`, `Invalid`, `TooLarge`, `Unwritable`). */
  readonly put: (hash: string, bytes: Uint8Array) => Effect.Effect<void, ShippingError>
  /** The bytes stored under `hash`, checked again (`Missing`, `HashMismatch`). */
  readonly read: (hash: string) => Effect.Effect<Uint8Array, ShippingError>
  /**
   * Like `missing`, but reads and hashes every present object, and removes one whose bytes no longer
   * match its hash (a disk fault, a hand edit), so that the caller ships it again. Costs a read of each
   * file: a few milliseconds for a program of a few hundred kilobytes.
   */
  readonly verify: (hashes: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>>
  /** Stores a manifest (checked) as `dir/manifests/<hash>.json`, so a child can be started with its hash alone. */
  readonly putManifest: (manifest: Manifest) => Effect.Effect<void, ShippingError>
  /** The manifest stored under `hash`, decoded and checked. */
  readonly manifest: (hash: string) => Effect.Effect<Manifest, ShippingError>
}

/**
 * Options of {@link openCache}.
 *
 * @since 0.4.0
 * @category daemon
 */
export interface CacheOptions {
  /** Largest file `put` accepts, in bytes (default 16 MiB, as `collect`). */
  readonly maxFileBytes?: number | undefined
}

const objectPath = (dir: string, hash: string): string => join(dir, "objects", hash)

const writeAtomically = (dir: string, target: string, bytes: Uint8Array | string, label: string) =>
  Effect.tryPromise({
    try: async () => {
      const tmp = join(dir, "tmp", `${randomUUID()}.${process.pid}`)
      await writeFile(tmp, bytes, { flag: "wx" })
      try {
        await rename(tmp, target)
      } catch (e) {
        await rm(tmp, { force: true })
        throw e
      }
    },
    catch: (e) => new ShippingError({ reason: "Unwritable", file: label, detail: messageOf(e) })
  })

/**
 * Removes what a daemon killed in the middle of a write left in `tmp`. Only files older than an hour:
 * another daemon sharing the directory may be writing the younger ones.
 */
const removeStaleTemporaries = (tmp: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    const cutoff = Date.now() - 60 * 60 * 1000
    for (const name of await readdir(tmp).catch(() => [])) {
      const path = join(tmp, name)
      const info = await stat(path).catch(() => undefined)
      if (info !== undefined && info.mtimeMs < cutoff) await rm(path, { force: true }).catch(() => undefined)
    }
  })

/**
 * Opens (creating it if needed) the cache in `dir`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Shipping from "effect-corps/host/shipping" // src/host/shipping.ts
 *
 * const receive = (manifest: Shipping.Manifest, fetch: (hash: string) => Effect.Effect<Uint8Array>) =>
 *   Effect.gen(function* () {
 *     const cache = yield* Shipping.openCache("/var/cache/corps")
 *     for (const hash of cache.missing(manifest.files.map((f) => f.hash))) {
 *       yield* cache.put(hash, yield* fetch(hash))
 *     }
 *     yield* cache.putManifest(manifest)
 *   })
 * ```
 *
 * @since 0.4.0
 * @category daemon
 */
export const openCache = (dir: string, options?: CacheOptions): Effect.Effect<Cache, ShippingError> =>
  Effect.gen(function* () {
    const maxFileBytes = options?.maxFileBytes ?? 16 * 1024 * 1024
    yield* Effect.tryPromise({
      try: () => Promise.all(["objects", "tmp", "manifests"].map((sub) => mkdir(join(dir, sub), { recursive: true }))),
      catch: (e) => new ShippingError({ reason: "Unwritable", file: dir, detail: messageOf(e) })
    })
    yield* removeStaleTemporaries(join(dir, "tmp"))
    const invalid = (hash: string) =>
      new ShippingError({ reason: "Invalid", file: hash, detail: `${JSON.stringify(hash)} is not a sha256` })
    const read = (hash: string): Effect.Effect<Uint8Array, ShippingError> =>
      Effect.gen(function* () {
        if (!isHash(hash)) return yield* invalid(hash)
        const bytes = yield* Effect.tryPromise({
          try: () => readFile(objectPath(dir, hash)),
          catch: (e) => new ShippingError({ reason: "Missing", file: hash, detail: messageOf(e) })
        })
        const actual = sha256(bytes)
        if (actual !== hash) {
          return yield* new ShippingError({
            reason: "HashMismatch",
            file: hash,
            detail: `the stored bytes hash to ${actual}`
          })
        }
        return bytes
      })
    const cache: Cache = {
      dir,
      missing: (hashes) => [...new Set(hashes)].filter((h) => !isHash(h) || !existsSync(objectPath(dir, h))),
      put: (hash, bytes) =>
        Effect.gen(function* () {
          if (!isHash(hash)) return yield* invalid(hash)
          if (bytes.byteLength > maxFileBytes) {
            return yield* new ShippingError({
              reason: "TooLarge",
              file: hash,
              detail: `${bytes.byteLength} bytes, over the limit of ${maxFileBytes}`
            })
          }
          const actual = sha256(bytes)
          if (actual !== hash) {
            return yield* new ShippingError({
              reason: "HashMismatch",
              file: hash,
              detail: `the bytes hash to ${actual}`
            })
          }
          // Written even when present: the rename replaces a damaged object in one step, and a reader sees
          // either the old or the new file, never half of one.
          yield* writeAtomically(dir, objectPath(dir, hash), bytes, hash)
        }),
      read,
      verify: (hashes) =>
        Effect.forEach(
          [...new Set(hashes)],
          (hash) =>
            read(hash).pipe(
              Effect.as(undefined),
              Effect.catch((error) =>
                error.reason === "HashMismatch"
                  ? Effect.tryPromise(() => rm(objectPath(dir, hash), { force: true })).pipe(
                      // Left in place if it cannot be removed: `put` replaces it by a rename anyway.
                      Effect.ignore,
                      Effect.as(hash)
                    )
                  : Effect.succeed(hash)
              )
            ),
          { concurrency: 8 }
        ).pipe(Effect.map((found) => found.filter((h): h is string => h !== undefined))),
      putManifest: (manifest) =>
        verifyManifest(manifest).pipe(
          Effect.flatMap(() =>
            writeAtomically(
              dir,
              join(dir, "manifests", `${manifest.hash}.json`),
              JSON.stringify(Schema.encodeSync(Manifest)(manifest)),
              "manifest"
            )
          )
        ),
      manifest: (hash) =>
        Effect.gen(function* () {
          if (!isHash(hash)) return yield* invalid(hash)
          const text = yield* Effect.tryPromise({
            try: () => readFile(join(dir, "manifests", `${hash}.json`), "utf8"),
            catch: (e) => new ShippingError({ reason: "Missing", file: "manifest", detail: messageOf(e) })
          })
          const json = yield* Effect.try({
            try: () => JSON.parse(text) as unknown,
            catch: (e) => new ShippingError({ reason: "Invalid", file: "manifest", detail: messageOf(e) })
          })
          return yield* decodeManifest(json, hash)
        })
    }
    return cache
  })

/**
 * The URL of the child's preload (`src/host/preload.ts`, `dist/host/preload.js`
 * once built): start the child with `execArgv: ["--import", preloadUrl]` and
 * {@link preloadEnv} in its environment, and every module it loads, in every
 * thread, goes through the shipping loader.
 *
 * @since 0.4.0
 * @category child
 */
export const preloadUrl: string = new URL(
  import.meta.url.endsWith(".ts") ? "./preload.ts" : "./preload.js",
  import.meta.url
).href

/**
 * The environment variables the preload reads: the cache directory, the
 * manifest hash the start request named, and optionally the folder packages
 * resolve from (default {@link defaultPackageRoot}).
 *
 * @since 0.4.0
 * @category child
 */
export const preloadEnv = (
  cacheDir: string,
  manifestHash: string,
  fromDir?: string
): Record<"CORPS_SHIPPED_CACHE" | "CORPS_SHIPPED_MANIFEST", string> & { CORPS_SHIPPED_PACKAGES?: string } => ({
  CORPS_SHIPPED_CACHE: cacheDir,
  CORPS_SHIPPED_MANIFEST: manifestHash,
  ...(fromDir === undefined ? {} : { CORPS_SHIPPED_PACKAGES: fromDir })
})

/**
 * Reads the manifest stored under `hash` in the cache at `cacheDir`, decoded
 * and checked, synchronously: for a child's preload, before any module of the
 * program is imported. Throws a `ShippingError` (`Missing`, `Invalid`,
 * `HashMismatch`).
 *
 * @since 0.4.0
 * @category child
 */
export const readManifestSync = (cacheDir: string, hash: string): Manifest => {
  if (!isHash(hash)) {
    throw new ShippingError({ reason: "Invalid", file: hash, detail: `${JSON.stringify(hash)} is not a sha256` })
  }
  let json: unknown
  try {
    json = JSON.parse(readFileSync(join(cacheDir, "manifests", `${hash}.json`), "utf8"))
  } catch (e) {
    throw new ShippingError({ reason: "Missing", file: "manifest", detail: messageOf(e) })
  }
  let manifest: Manifest
  try {
    manifest = Schema.decodeUnknownSync(Manifest)(json)
  } catch (e) {
    throw new ShippingError({ reason: "Invalid", file: "manifest", detail: messageOf(e) })
  }
  const problem = manifestProblem(manifest, hash)
  if (problem !== undefined) throw problem
  return manifest
}

/**
 * The directory packages resolve from when no other is given: the root of
 * the effect-corps package itself (this file is `src/host/shipping.ts` or
 * `dist/host/shipping.js`). Node looks for `effect` in its `node_modules` and
 * in every parent's, so an installed effect-corps finds the packages
 * installed beside it.
 *
 * @since 0.4.0
 * @category daemon
 */
export const defaultPackageRoot: string = fileURLToPath(new URL("../../", import.meta.url))

const readPackageJson = (path: string): { readonly name?: unknown; readonly version?: unknown } | undefined => {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as { name?: unknown; version?: unknown }
  } catch {
    // Absent or unreadable: it names nothing.
    return undefined
  }
}

/**
 * The package.json of package `name` as Node finds it from `fromDir`: a
 * `node_modules/<name>` on the way up, or the package itself (a package can
 * import itself by name, through its "exports").
 */
const findPackage = (name: string, fromDir: string): { readonly version?: unknown } | undefined => {
  let dir = fromDir
  for (;;) {
    const installed = readPackageJson(join(dir, "node_modules", name, "package.json"))
    if (installed !== undefined) return installed
    const own = readPackageJson(join(dir, "package.json"))
    if (own !== undefined && own.name === name) return own
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

const packageVersion = (name: string, fromDir: string): string | undefined => {
  const version = findPackage(name, fromDir)?.version
  return typeof version === "string" ? version : undefined
}

/**
 * A package whose version on the host is not the caller's: what
 * {@link checkPackages} gives back, for the daemon to log or refuse.
 *
 * @since 0.4.0
 * @category daemon
 */
export interface VersionDifference {
  readonly package: string
  readonly caller: string
  /** `undefined` when the host's package.json has no version. */
  readonly host: string | undefined
}

/**
 * Checks that every package the program imports is installed where the
 * daemon runs: found in a `node_modules` on the way up from `fromDir` (the
 * daemon's package root), or being the package at `fromDir` itself. Fails
 * with a `PackageMissing` naming the first one missing (in name order);
 * `host` is copied into it. It checks the package, not each subpath
 * (`effect/Schema`).
 *
 * Succeeds with the packages whose version differs from the caller's
 * (`manifest.packageVersions`), empty when all match: a different version
 * is not refused (a patch release is usually harmless), but the daemon
 * should say so, since caller and host then do not run quite the same code.
 *
 * @since 0.4.0
 * @category daemon
 */
export const checkPackages = (
  manifest: Manifest,
  fromDir: string = defaultPackageRoot,
  options?: { readonly host?: string | undefined }
): Effect.Effect<ReadonlyArray<VersionDifference>, PackageMissing> =>
  Effect.suspend(() => {
    const differences: Array<VersionDifference> = []
    for (const name of manifest.packages) {
      const found = findPackage(name, fromDir)
      if (found === undefined) {
        return Effect.fail(
          new PackageMissing({
            package: name,
            from: fromDir,
            ...(options?.host === undefined ? {} : { host: options.host })
          })
        )
      }
      const caller = manifest.packageVersions?.[name]
      const host = typeof found.version === "string" ? found.version : undefined
      if (caller !== undefined && caller !== host) differences.push({ package: name, caller, host })
    }
    return Effect.succeed(differences)
  })

const withoutFragment = (url: string): string => {
  const hash = url.indexOf("#")
  return hash < 0 ? url : url.slice(0, hash)
}

/**
 * Options of {@link installLoader}.
 *
 * @since 0.4.0
 * @category child
 */
export interface LoaderOptions {
  /** Where bare specifiers of shipped files resolve from (default {@link defaultPackageRoot}). */
  readonly fromDir?: string | undefined
  /** The manifest hash the start request names: any other manifest is refused. */
  readonly expectedHash?: string | undefined
}

/**
 * An installed loader.
 *
 * @since 0.4.0
 * @category child
 */
export interface Loader {
  /** Removes the hooks: later imports go to disk again (modules already loaded stay). */
  readonly uninstall: () => void
}

/**
 * Installs, in the current thread, the module hooks that run a shipped
 * program from the cache in `cacheDir`. Call it in the daemon's child before
 * importing `manifest.entry`; then `import(manifest.entry)` loads the caller's
 * program. Synchronous; throws a `ShippingError` when the manifest's hash is
 * wrong (`HashMismatch`, also when it differs from `expectedHash`) or a file
 * is not in the cache (`Missing`).
 *
 * How it works: Node's `module.registerHooks` (in-thread, synchronous).
 * `resolve` answers a relative or absolute specifier that lands on a shipped
 * URL with that URL, without asking the disk; a bare specifier imported by a
 * shipped file is resolved as if imported from `fromDir`, so packages come
 * from the host's installation, never from the caller's path. `load` serves
 * a shipped URL's bytes from the cache, checking their sha256 first (a file
 * altered in the cache is refused with `HashMismatch`), with the format the
 * caller recorded (`module-typescript` for `.ts`, so Node strips types as it
 * would have on the caller).
 *
 * Shipped files keep the caller's URLs. Relative imports between them
 * resolve as they did on the caller, `import.meta.url` reads the same, and a
 * stack trace names the caller's files. A consequence worth knowing: Node
 * keys modules by URL, so when a shipped file has the same URL as a module
 * the child has loaded from its own disk (a caller and a daemon using the
 * same checkout, where the program reaches effect-corps' sources through a
 * relative import), the two are one module instance, the one loaded first.
 * That is what makes the daemon's runtime and the shipped program share the
 * library's classes and registries; it also means a file the child loaded
 * before `installLoader` keeps its disk version under that URL.
 *
 * Hooks are per thread. A daemon should rather start its child with the
 * preload `src/host/preload.ts` (`node --import`, the cache and manifest hash
 * in the environment): the loader is then installed before any module,
 * effect-corps' own included, and in every worker thread and forked process
 * of the child, which inherit `--import`.
 *
 * @since 0.4.0
 * @category child
 */
export const installLoader = (cacheDir: string, manifest: Manifest, options?: LoaderOptions): Loader => {
  const problem = manifestProblem(manifest, options?.expectedHash)
  if (problem !== undefined) throw problem
  const files = new Map<string, ShippedFile>()
  for (const file of manifest.files) {
    if (!existsSync(objectPath(cacheDir, file.hash))) {
      throw new ShippingError({
        reason: "Missing",
        file: file.url,
        detail: `object ${file.hash} is not in ${cacheDir}`
      })
    }
    files.set(file.url, file)
  }
  // A parent URL inside the package root: Node resolves a bare specifier by walking up from it.
  const packageParent = pathToFileURL(join(options?.fromDir ?? defaultPackageRoot, "__corps_shipped__.js")).href
  const hooks = registerHooks({
    resolve: (specifier, context, nextResolve) => {
      if (isPathLike(specifier)) {
        const parent = context.parentURL
        let url: URL | undefined
        try {
          url = parent === undefined ? new URL(specifier) : new URL(specifier, parent)
        } catch {
          url = undefined
        }
        if (url !== undefined) {
          // The URL is answered with its fragment: Node makes `./a.ts#1` and `./a.ts#2` two instances, as on the caller.
          const file = files.get(withoutFragment(url.href))
          if (file !== undefined) return { url: url.href, format: file.format, shortCircuit: true }
        }
      } else if (
        context.parentURL !== undefined &&
        files.has(withoutFragment(context.parentURL)) &&
        isBare(specifier)
      ) {
        if (!isBuiltin(specifier)) return nextResolve(specifier, { ...context, parentURL: packageParent })
      }
      return nextResolve(specifier, context)
    },
    load: (url, context, nextLoad) => {
      const file = files.get(withoutFragment(url))
      if (file === undefined) return nextLoad(url, context)
      const bytes = readFileSync(objectPath(cacheDir, file.hash))
      const actual = sha256(bytes)
      if (actual !== file.hash) {
        throw new ShippingError({
          reason: "HashMismatch",
          file: url,
          detail: `the cache holds bytes hashing to ${actual}, not ${file.hash}`
        })
      }
      return { format: file.format, source: bytes, shortCircuit: true }
    }
  })
  return { uninstall: () => hooks.deregister() }
}

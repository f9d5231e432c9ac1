/**
 * 03 — Parallel grep: every core searches, only configuration says where.
 *
 * Searcher Concs, one per Env, search the files of a directory tree for a
 * regular expression. The same program runs with its Workers local, in
 * threads or in processes; only the placement changes. It checks the result
 * against a sequential search in this thread and prints the speedup:
 *
 *   searching 572 files (22.9 MB) under node_modules/effect/src for /Effect\.gen/g
 *   placement: {"envs":{"cores":{"kind":"thread"}},"workers":{"Searcher":{"env":"cores","strategy":"per-env"}}}
 *   2 Searchers: 3,391 matches in 412 ms; sequential: 3,391 matches in 701 ms
 *   identical to the sequential search: yes; speedup ×1.70
 *   first matches:
 *     node_modules/effect/src/Array.ts:123: ...
 *
 * Run: npm run example:grep [-- DIR [REGEX]]
 * Other placements: CORPS_PLACEMENT='{"envs":{"cores":{"kind":"process"}},"workers":{"Searcher":{"env":"cores"}}}'
 * or CORPS_PLACEMENT='{}' (all local).
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { availableParallelism } from "node:os"
import { join } from "node:path"
import { Effect, Layer, Option, Schema } from "effect"
import { Corps, Placement, Worker } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"

/** One matching line. */
const Match = Schema.Struct({ file: Schema.String, line: Schema.Number, text: Schema.String })
type Match = typeof Match.Type

/** Searches files for a pattern; counts what it has searched (its state). */
export class Searcher extends Worker.Service<Searcher>()("Searcher", {
  search: {
    payload: { files: Schema.Array(Schema.String), source: Schema.String, flags: Schema.String },
    success: Schema.Array(Match)
  },
  searched: { success: Schema.Number }
}) {}

/** Finds every matching line of `files`. */
export const searchFiles = (files: ReadonlyArray<string>, regex: RegExp): Array<Match> => {
  const matches: Array<Match> = []
  for (const file of files) {
    const lines = readFileSync(file, "utf8").split("\n")
    for (let i = 0; i < lines.length; i++) {
      regex.lastIndex = 0
      if (regex.test(lines[i]!)) matches.push({ file, line: i + 1, text: lines[i]!.trim().slice(0, 100) })
    }
  }
  return matches
}

/** The Searcher: a Conc, so each instance keeps its own count of files searched. */
export const SearcherLive = Searcher.conc(
  Effect.sync(() => {
    let searched = 0
    return {
      search: ({ files, source, flags }) => {
        searched += files.length
        return searchFiles(files, new RegExp(source, flags))
      },
      searched: () => searched
    }
  })
)

const listFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === ".git" ? [] : listFiles(path)
    return entry.isFile() ? [path] : []
  })

const defaultPlacement: Placement.Placement = {
  envs: { cores: { kind: "thread" } },
  workers: { Searcher: { env: "cores", strategy: "per-env" } }
}

const byPosition = (a: Match, b: Match) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line)

const main = Effect.gen(function* () {
  const dir = process.argv[2] ?? "node_modules/effect/src"
  const regex = new RegExp(process.argv[3] ?? "Effect\\.gen", "g")
  const files = listFiles(dir)
  const bytes = files.reduce((sum, file) => sum + statSync(file).size, 0)
  const placement = yield* Effect.map(Effect.serviceOption(Placement.CurrentPlacement), Option.getOrThrow)
  const searchers = availableParallelism()
  console.log(`searching ${files.length} files (${(bytes / 1e6).toFixed(1)} MB) under ${dir} for ${regex}`)
  console.log(`placement: ${JSON.stringify(placement)}`)

  const searcher = yield* Searcher
  // Deal the files out in turn, so each Searcher gets a similar share.
  const shares: Array<Array<string>> = Array.from({ length: searchers }, () => [])
  for (const [i, file] of files.entries()) shares[i % searchers]!.push(file)
  // Warm up each Searcher (its Env's module and JIT), as a long-running service would be.
  yield* Effect.forEach(shares, (_, i) => searcher.instance(String(i)).searched(), { concurrency: "unbounded" })

  const searchAll = Effect.forEach(
    shares,
    (share, i) => searcher.instance(String(i)).search({ files: share, source: regex.source, flags: regex.flags }),
    { concurrency: "unbounded" }
  )
  // One untimed run of each first, so that both are timed warm (JIT, file cache).
  yield* searchAll
  searchFiles(files, regex)

  const sequentialStart = performance.now()
  const sequential = searchFiles(files, regex).sort(byPosition)
  const sequentialMs = performance.now() - sequentialStart

  const started = performance.now()
  const parts = yield* searchAll
  const parallelMs = performance.now() - started
  const parallel = parts.flat().sort(byPosition)

  const identical = JSON.stringify(parallel) === JSON.stringify(sequential)
  console.log(
    `${searchers} Searchers: ${parallel.length.toLocaleString("en-US")} matches in ${parallelMs.toFixed(0)} ms; ` +
      `sequential: ${sequential.length.toLocaleString("en-US")} matches in ${sequentialMs.toFixed(0)} ms`
  )
  console.log(
    `identical to the sequential search: ${identical ? "yes" : "NO"}; speedup ×${(sequentialMs / parallelMs).toFixed(2)}`
  )
  console.log("first matches:")
  for (const match of parallel.slice(0, 3)) console.log(`  ${match.file}:${match.line}: ${match.text}`)
  if (!identical) return yield* Effect.fail(new Error("the parallel search differs from the sequential one"))
})

// CORPS_PLACEMENT when set (a bad one fails with its PlacementError), else threads, one Searcher per core.
const PlacementLive = Layer.unwrap(
  Effect.map(Placement.fromConfig, (fromConfig) =>
    Placement.layer(process.env.CORPS_PLACEMENT !== undefined ? fromConfig : defaultPlacement)
  )
)

if (import.meta.main) {
  const App = Corps.layer([SearcherLive], { module: import.meta.url }).pipe(
    Layer.provide(NodeEnv.layer),
    Layer.provideMerge(PlacementLive)
  )
  Effect.runPromise(main.pipe(Effect.provide(App))).catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}

/**
 * 03 — Parallel search: every core searches, only configuration says where.
 *
 * The program generates a corpus (16,000 lines of made-up words, the same for
 * a given seed) and searches every line for six patterns that make the
 * regular-expression engine backtrack: a word said twice, a long word that
 * comes back later in the line, letters that recur, and so on. Searcher
 * Concs, one per core, each search one large share of the lines; the same
 * program runs with its Workers in threads, in processes or local, and only
 * the placement changes. It checks the result against a sequential search in
 * this thread (and exits with code 1 if they differ), then prints the
 * speedup, the best of two interleaved rounds each. On 2 idle cores it
 * printed ×1.7–×2.0 (a busy machine prints less):
 *
 *   corpus: 16,000 generated lines (3.3 MB, seed 2026), 6 patterns
 *   placement: {"envs":{"cores":{"kind":"thread"}},"workers":{"Searcher":{"env":"cores","strategy":"per-env"}}}
 *   2 Searchers: 21,032 matches in 405 ms; sequential: 21,032 matches in 798 ms (best of 2 rounds each)
 *   identical to the sequential search: yes; speedup ×1.97
 *   matches by pattern:
 *       1,807  a word said twice in a row             /\b(\w+) \1\b/
 *         112  a long word that comes back later      /\b(\w{5,})\b.*\b\1\b/
 *      14,947  four letters that recur later          /(\w{4})\w*(?: \w+)* \w*\1/
 *       2,392  a word ending in its start reversed    /\b(\w)(\w)\w*\2\1\b/
 *       1,709  a word whose halves come back swapped  /\b(\w\w)(\w\w) (?:\w+ )*\2\1\b/
 *          65  three letters in three words           /\b(\w{3})\w* (?:\w+ )*?\w*\1 (?:\w+ )*?\w*\1\b/
 *
 * Run: npm run example:grep [-- LINES [SEED]]
 * Other placements: CORPS_PLACEMENT='{"envs":{"cores":{"kind":"process"}},"workers":{"Searcher":{"env":"cores","strategy":"per-env"}}}'
 * or CORPS_PLACEMENT='{}' (all local: one Searcher at a time, so no speedup).
 */
import { availableParallelism } from "node:os"
import { Effect, Layer, Option, Schema } from "effect"
import { Corps, Placement, Worker } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"

/**
 * What is searched for. Each pattern is tried on every line; the ones with
 * a back-reference after `.*` or `(?:\w+ )*` try every split of the line
 * before giving up, which is what makes the search CPU-bound.
 */
export const patterns: ReadonlyArray<{ readonly name: string; readonly regex: RegExp }> = [
  { name: "a word said twice in a row", regex: /\b(\w+) \1\b/ },
  { name: "a long word that comes back later", regex: /\b(\w{5,})\b.*\b\1\b/ },
  { name: "four letters that recur later", regex: /(\w{4})\w*(?: \w+)* \w*\1/ },
  { name: "a word ending in its start reversed", regex: /\b(\w)(\w)\w*\2\1\b/ },
  { name: "a word whose halves come back swapped", regex: /\b(\w\w)(\w\w) (?:\w+ )*\2\1\b/ },
  { name: "three letters in three words", regex: /\b(\w{3})\w* (?:\w+ )*?\w*\1 (?:\w+ )*?\w*\1\b/ }
]

/**
 * Searches `lines` (numbered from `first`): for each pattern, the numbers of
 * the lines it matches, in order.
 */
export const searchLines = (lines: ReadonlyArray<string>, first: number): Array<Array<number>> =>
  patterns.map(({ regex }) => {
    const found: Array<number> = []
    for (let i = 0; i < lines.length; i++) if (regex.test(lines[i]!)) found.push(first + i)
    return found
  })

/** Searches lines for the patterns; counts the lines it has searched (its state). */
export class Searcher extends Worker.Service<Searcher>()("Searcher", {
  search: {
    payload: { lines: Schema.Array(Schema.String), first: Schema.Number },
    success: Schema.Array(Schema.Array(Schema.Number))
  },
  searched: { success: Schema.Number }
}) {}

/** The Searcher: a Conc, so each instance keeps its own count of lines searched. */
export const SearcherLive = Searcher.conc(
  Effect.sync(() => {
    let searched = 0
    return {
      search: ({ lines, first }) => {
        searched += lines.length
        return searchLines(lines, first)
      },
      searched: () => searched
    }
  })
)

/** A small seeded generator (mulberry32): the same seed gives the same corpus on every run. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const syllables = [
  "ka",
  "lo",
  "mi",
  "ne",
  "ru",
  "sa",
  "ti",
  "vo",
  "ze",
  "an",
  "el",
  "or",
  "us",
  "ip",
  "ba",
  "de",
  "na",
  "ik"
]

/** `count` lines of 20 to 49 words, each word one to four syllables. */
export const generateCorpus = (count: number, seed: number): Array<string> => {
  const next = random(seed)
  const pick = (n: number) => Math.floor(next() * n)
  const lines: Array<string> = []
  for (let i = 0; i < count; i++) {
    const words: Array<string> = []
    for (let w = 20 + pick(30); w > 0; w--) {
      let word = ""
      for (let s = 1 + pick(4); s > 0; s--) word += syllables[pick(syllables.length)]
      words.push(word)
    }
    lines.push(words.join(" "))
  }
  return lines
}

const defaultPlacement: Placement.Placement = {
  envs: { cores: { kind: "thread" } },
  workers: { Searcher: { env: "cores", strategy: "per-env" } }
}

const count = (results: ReadonlyArray<ReadonlyArray<number>>) => results.reduce((sum, lines) => sum + lines.length, 0)
const format = (n: number) => n.toLocaleString("en-US")

const main = Effect.gen(function* () {
  const lineCount = Number(process.argv[2] ?? 16_000)
  const seed = Number(process.argv[3] ?? 2026)
  if (!Number.isInteger(lineCount) || lineCount < 1 || !Number.isInteger(seed)) {
    return yield* Effect.fail(new Error(`usage: 03_regex_search.ts [LINES] [SEED] (positive integers)`))
  }
  const corpus = generateCorpus(lineCount, seed)
  const bytes = corpus.reduce((sum, line) => sum + line.length + 1, 0)
  const placement = yield* Effect.map(Effect.serviceOption(Placement.CurrentPlacement), Option.getOrThrow)
  const searchers = availableParallelism()
  console.log(
    `corpus: ${format(lineCount)} generated lines (${(bytes / 1e6).toFixed(1)} MB, seed ${seed}), ${patterns.length} patterns`
  )
  console.log(`placement: ${JSON.stringify(placement)}`)

  const searcher = yield* Searcher
  // One large share of consecutive lines per Searcher: a few big calls, so the search outweighs the transport.
  const size = Math.ceil(lineCount / searchers)
  const shares = Array.from({ length: searchers }, (_, i) => ({
    first: i * size,
    lines: corpus.slice(i * size, (i + 1) * size)
  }))
  const searchAll = (part: (lines: ReadonlyArray<string>) => ReadonlyArray<string>) =>
    Effect.forEach(
      shares,
      ({ first, lines }, i) => searcher.instance(String(i)).search({ lines: part(lines), first }),
      { concurrency: "unbounded" }
    )
  // Warm up each Searcher (its Env's start, module and regex compilation) and this thread's patterns on a
  // small sample, as a long-running service would be; then both searches are timed warm.
  yield* searchAll((lines) => lines.slice(0, 200))
  searchLines(corpus.slice(0, 400), 0)

  // Two timed rounds of each, interleaved, and the faster of each is kept: one round alone on a shared
  // machine is as likely to measure a neighbour as the search.
  let sequential: Array<Array<number>> = []
  let sequentialMs = Number.POSITIVE_INFINITY
  let parallel: Array<Array<number>> = []
  let parallelMs = Number.POSITIVE_INFINITY
  let identical = true
  for (let round = 0; round < 2; round++) {
    const sequentialStart = performance.now()
    sequential = searchLines(corpus, 0)
    sequentialMs = Math.min(sequentialMs, performance.now() - sequentialStart)

    const started = performance.now()
    const parts = yield* searchAll((lines) => lines)
    parallelMs = Math.min(parallelMs, performance.now() - started)
    // Shares hold consecutive lines in order, so concatenating them keeps each pattern's lines sorted.
    parallel = patterns.map((_, p) => parts.flatMap((part) => part[p] ?? []))
    identical &&= JSON.stringify(parallel) === JSON.stringify(sequential)
  }

  console.log(
    `${searchers} Searchers: ${format(count(parallel))} matches in ${format(Math.round(parallelMs))} ms; ` +
      `sequential: ${format(count(sequential))} matches in ${format(Math.round(sequentialMs))} ms (best of 2 rounds each)`
  )
  console.log(
    `identical to the sequential search: ${identical ? "yes" : "NO"}; speedup ×${(sequentialMs / parallelMs).toFixed(2)}`
  )
  console.log("matches by pattern:")
  for (const [p, { name, regex }] of patterns.entries()) {
    console.log(`  ${format(parallel[p]!.length).padStart(7)}  ${name.padEnd(38)} ${regex}`)
  }
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

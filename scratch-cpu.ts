import { Effect, Layer, Schema } from "effect"
import { Corps, Worker } from "./src/index.ts"
import { NodeEnv } from "./src/node/index.ts"
import { generateCorpus, searchLines } from "./examples/03_regex_search.ts"
export class S extends Worker.Service<S>()("S", {
  run: { payload: { lines: Schema.Array(Schema.String), first: Schema.Number }, success: Schema.Struct({ cpu: Schema.Number, wall: Schema.Number, n: Schema.Number }) }
}) {}
export const SLive = S.conc(Effect.sync(() => ({
  run: ({ lines, first }) => {
    const c = process.threadCpuUsage(); const w = performance.now()
    const r = searchLines(lines, first)
    const d = process.threadCpuUsage(c)
    return { cpu: (d.user + d.system) / 1000, wall: performance.now() - w, n: r.flat().length }
  }
})))
if (import.meta.main) {
  const kind = process.argv[2] ?? "thread"
  const App = Corps.layer([SLive], { module: import.meta.url, placement: { envs: { c: { kind: kind as "thread" } }, workers: { S: { env: "c", strategy: "per-env" } } } }).pipe(Layer.provide(NodeEnv.layer))
  Effect.runPromise(Effect.gen(function* () {
    const corpus = generateCorpus(20000, 2026)
    const s = yield* S
    const shares = [0, 1].map((i) => ({ first: i * 10000, lines: corpus.slice(i * 10000, (i + 1) * 10000) }))
    yield* Effect.forEach(shares, (sh, i) => s.instance(String(i)).run({ lines: sh.lines.slice(0, 200), first: 0 }), { concurrency: "unbounded" })
    for (let round = 0; round < 3; round++) {
      const c = process.threadCpuUsage(); const w = performance.now()
      const n = searchLines(corpus, 0).flat().length
      const d = process.threadCpuUsage(c)
      const seq = { cpu: (d.user + d.system) / 1000, wall: performance.now() - w }
      const t = performance.now()
      const parts = yield* Effect.forEach(shares, (sh, i) => s.instance(String(i)).run(sh), { concurrency: "unbounded" })
      const wall = performance.now() - t
      console.log(`seq cpu ${seq.cpu.toFixed(0)} wall ${seq.wall.toFixed(0)} | shares cpu ${parts.map((p) => p.cpu.toFixed(0)).join("/")} wall ${parts.map((p) => p.wall.toFixed(0)).join("/")} | parallel wall ${wall.toFixed(0)} | cpu-speedup ${(seq.cpu / Math.max(...parts.map((p) => p.cpu))).toFixed(2)} n=${n}/${parts.reduce((a, p) => a + p.n, 0)}`)
    }
  }).pipe(Effect.provide(App)))
}

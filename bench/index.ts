/**
 * `npm run bench`: every benchmark, side by side with its baselines, ending
 * with one line of JSON holding every figure printed (stable keys).
 */
import { runBaselines } from "./baselines.bench.ts"
import { runFastPath } from "./fastpath.bench.ts"
import { printJson } from "./lib/report.ts"

// A benchmark must never hang CI or a terminal: child processes are killed by
// their pools, and this guard ends the run whatever happens.
setTimeout(() => {
  console.error("bench: time limit reached")
  process.exit(2)
}, 240_000).unref()

console.log(`effect-corps bench — Node ${process.version}, ${new Date().toISOString()}`)
await runFastPath()
await runBaselines()
printJson()
process.exit(0)

/**
 * `npm run bench`: every benchmark, side by side with its baselines, ending
 * with one line of JSON holding every figure printed (stable keys).
 */
import { createConnection } from "node:net"
import { runBaselines } from "./baselines.bench.ts"
import { runCluster } from "./cluster.bench.ts"
import { runErrors } from "./errors.bench.ts"
import { runExternal } from "./external.bench.ts"
import { runFastPath } from "./fastpath.bench.ts"
import { runGateway } from "./gateway.bench.ts"
import { runHosts } from "./hosts.bench.ts"
import { printJson } from "./lib/report.ts"
import { runMonitoring } from "./monitoring.bench.ts"
import { runRecovery } from "./recovery.bench.ts"
import { runPassivation, runScaling } from "./scaling.bench.ts"
import { runState } from "./state.bench.ts"

// A benchmark must never hang CI or a terminal: child processes are killed by
// their pools, and this guard ends the run whatever happens.
setTimeout(() => {
  console.error("bench: time limit reached")
  process.exit(2)
}, 1_500_000).unref()

console.log(`effect-corps bench — Node ${process.version}, ${new Date().toISOString()}`)
/** Whether PostgreSQL answers on 127.0.0.1:5432 (the cluster benchmark needs it). */
const postgresUp = (): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port: 5432 })
    socket.setTimeout(1000)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
  })

await runFastPath()
await runErrors()
await runBaselines()
// After the FastPath and the baselines: its "off" figures are compared with theirs.
await runMonitoring()
await runRecovery()
await runScaling()
await runPassivation()
await runHosts()
await runExternal()
await runGateway()
if (await postgresUp()) await runCluster()
else console.log("\n== cluster: skipped (no PostgreSQL at 127.0.0.1:5432)")
if (await postgresUp()) await runState()
else console.log("\n== state: skipped (no PostgreSQL at 127.0.0.1:5432)")
printJson()
process.exit(0)

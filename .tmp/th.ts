import { Monitoring } from "../src/index.ts"
import { corpsPool } from "../bench/corps/pools.ts"
const off = await corpsPool("thread")
const on = await corpsPool("thread", Monitoring.layer({ metrics: true }))
const best: Record<string, number> = {}
for (let r = 0; r < 8; r++) for (const [k, p] of Object.entries({ off, on })) {
  const t = performance.now(); await p.run(30000); const rate = 30000 / ((performance.now() - t) / 1000)
  best[k] = Math.max(best[k] ?? 0, rate)
}
console.log(process.env.EXP ?? "-", Object.entries(best).map(([k, v]) => `${k} ${Math.round(v)}`).join("  "))
await off.close(); await on.close()
process.exit(0)

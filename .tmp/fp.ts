import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Corps, Monitoring, Worker } from "../src/index.ts"
class Adder extends Worker.Service<Adder>()("A", { inc: { payload: { n: Schema.Number }, success: Schema.Number } }) {}
const AdderLive = Adder.func({ inc: ({ n }) => Effect.succeed(n + 1) })
const mk = async (m: any) => {
  const corps = Corps.layer([AdderLive])
  const rt = ManagedRuntime.make(m === undefined ? corps : corps.pipe(Layer.provide(m)))
  const adder = await rt.runPromise(Effect.service(Adder))
  return (ops: number) => rt.runPromise(Effect.gen(function* () { let l = 0; for (let i = 0; i < ops; i++) l = (yield* adder.inc({ n: i })) as number; return l }))
}
(globalThis as any).EXP = Number(process.env.EXP ?? 0)
const variants: Record<string, any> = { off: await mk(undefined), wrapOnly: await mk(Monitoring.layer({ metrics: false })), metrics: await mk(Monitoring.layer({ metrics: true })) }
const best: Record<string, number> = {}
for (let r = 0; r < 12; r++) {
  for (const [k, f] of Object.entries(variants)) { const t = performance.now(); await f(200000); const ns = ((performance.now() - t) / 200000) * 1e6; best[k] = Math.min(best[k] ?? 1e9, ns) }
}
console.log(process.env.EXP, Object.entries(best).map(([k, v]) => `${k} ${v.toFixed(0)}ns`).join("  "))
process.exit(0)

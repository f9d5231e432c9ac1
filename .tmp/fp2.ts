import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Corps, Monitoring, Worker } from "../src/index.ts"
class Adder extends Worker.Service<Adder>()("A", { inc: { payload: { n: Schema.Number }, success: Schema.Number } }) {}
const AdderLive = Adder.func({ inc: ({ n }) => Effect.succeed(n + 1) })
const corps = Corps.layer([AdderLive])
const rt = ManagedRuntime.make(corps.pipe(Layer.provide(Monitoring.layer({ metrics: true }))))
const adder = await rt.runPromise(Effect.service(Adder))
for (let r = 0; r < 10; r++) await rt.runPromise(Effect.gen(function* () { let l = 0; for (let i = 0; i < 200000; i++) l = (yield* adder.inc({ n: i })) as number; return l }))
process.exit(0)

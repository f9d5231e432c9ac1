/**
 * Failing calls on the FastPath (issue 11): a Func call failing with its
 * declared error, and one failing with a CallError it lets through (wrapped
 * as DownstreamFailed), side by side with a plain Effect service failing the
 * same way. Successes do not go through this code (see fastpath.bench.ts).
 *
 * Run alone with `npx node --expose-gc bench/errors.bench.ts`.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { CallLost } from "../src/CorpsError.ts"
import { Corps, Worker } from "../src/index.ts"
import { throughputSideBySide } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const OPS = 100_000

class Refused extends Schema.TaggedError<Refused>()("Refused", { n: Schema.Number }) {}

const lost = new CallLost({ worker: "Far", method: "op", env: "far#0", reason: "gone" })

class Direct extends Context.Service<Direct, { readonly refuse: (n: number) => Effect.Effect<never, Refused> }>()(
  "bench/DirectFailing"
) {}

const DirectLive = Layer.succeed(Direct, { refuse: (n) => Effect.fail(new Refused({ n })) })

class Failing extends Worker.Service<Failing>()("Failing", {
  refuse: { payload: { n: Schema.Number }, error: Refused },
  relay: { payload: { n: Schema.Number } }
}) {}

const FailingLive = Failing.func({
  refuse: ({ n }) => Effect.fail(new Refused({ n })),
  relay: () => Effect.fail(lost)
})

const loop =
  <R>(call: (i: number) => Effect.Effect<unknown, unknown, R>) =>
  (ops: number) =>
    Effect.gen(function* () {
      let failures = 0
      for (let i = 0; i < ops; i++) {
        const exit = yield* Effect.exit(call(i))
        if (exit._tag === "Failure") failures++
      }
      return failures
    })

/** Measures failing FastPath calls against a plain service's; records figures and ratios. */
export const runErrors = async (): Promise<void> => {
  section(`Failing calls: ${OPS.toLocaleString("en-US")} sequential failures per round (calls/s, median of rounds)`)
  const program = Effect.gen(function* () {
    const direct = yield* Direct
    const failing = yield* Failing
    const rounds = {
      direct: loop((n) => direct.refuse(n)),
      declared: loop((n) => failing.refuse({ n })),
      downstream: loop((n) => failing.relay({ n }))
    }
    const runtime = yield* Effect.context<never>()
    const run = (make: (ops: number) => Effect.Effect<number, unknown>) => (ops: number) =>
      Effect.runPromise(Effect.provideContext(make(ops), runtime)).then((failures) => {
        if (failures !== ops) throw new Error(`expected ${ops} failures, got ${failures}`)
      })
    return yield* Effect.promise(() =>
      throughputSideBySide(Object.fromEntries(Object.entries(rounds).map(([k, make]) => [k, run(make)])), {
        ops: OPS,
        rounds: 7,
        warmup: 2
      })
    )
  })
  const rates = await Effect.runPromise(
    program.pipe(Effect.provide(Layer.merge(DirectLive, Corps.layer([FailingLive]))))
  )
  figure("errors.direct.failuresPerSec", rates.direct!, "calls/s")
  figure("errors.declared.failuresPerSec", rates.declared!, "calls/s")
  figure("errors.downstream.failuresPerSec", rates.downstream!, "calls/s")
  ratio("errors.declared.costVsDirect", rates.direct!, rates.declared!)
  ratio("errors.downstream.costVsDirect", rates.direct!, rates.downstream!)
}

if (import.meta.main) {
  setTimeout(() => process.exit(2), 120_000).unref()
  await runErrors()
  printJson()
}

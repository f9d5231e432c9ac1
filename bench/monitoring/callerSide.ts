/**
 * The caller's side of a call to another Env, alone: the handle's Target
 * (src/internal/dispatch.ts `remoteTarget`) wrapped as monitoring wraps it,
 * over a link that answers each batch of calls on the next turn with no
 * thread behind it. With 64 calls in flight, as the thread pool bench, a
 * round's CPU per call is what the caller's thread — the bottleneck of a
 * thread pool — spends on a call, with none of the Env threads' noise.
 */
import { Effect, Exit } from "effect"
import { remoteTarget } from "../../src/internal/dispatch.ts"
import type { Target } from "../../src/internal/handle.ts"
import { observeTarget } from "../../src/internal/observe.ts"
import { CallSeries, startTicks } from "../../src/internal/recorder.ts"
import type * as Wire from "../../src/internal/wire.ts"
import { IN_FLIGHT } from "../baselines/pool.ts"
import { BenchLive } from "../corps/workers.ts"

/** A link whose Env answers every call of a turn, in one batch, on the next turn (setImmediate). */
const immediateLink = () => {
  let batch: Array<readonly [Wire.Call, (reply: Effect.Effect<Wire.Exit, unknown>) => void]> = []
  const answer = () => {
    const calls = batch
    batch = []
    for (const [call, resume] of calls)
      resume(Exit.succeed({ _tag: "Success", value: (call.payload as { n: number }).n + 1 }))
  }
  return (call: Wire.Call, resume: (reply: Effect.Effect<Wire.Exit, unknown>) => void) => {
    if (batch.push([call, resume]) === 1) setImmediate(answer)
    return undefined
  }
}

/** The Target a handle of Bench would call through in set-up `setup` (as in monitoring.bench.ts). */
const targetFor = (setup: string): Target => {
  const register = immediateLink()
  const base = remoteTarget(BenchLive.worker, "", () => Effect.die("this link only registers"), register)
  if (setup === "off" || setup === "control") return base
  startTicks()
  const metrics = setup === "metrics"
  return observeTarget(base, {
    series: metrics ? { inc: new CallSeries("Bench", "inc", "pool", "local") } : undefined,
    tracing: metrics ? undefined : { sampleRate: 1, clientSpans: setup === "tracingClientSpans" },
    logAnnotations: undefined,
    worker: "Bench",
    env: "pool",
    perMethod: new Map()
  })
}

/** A round of `ops` calls of `inc`, `IN_FLIGHT` at a time, through the caller's side of set-up `setup`. */
export const callerSide = (setup: string) => {
  const target = targetFor(setup)
  return (ops: number) =>
    Effect.runPromise(
      Effect.gen(function* () {
        let next = 0
        const lane = Effect.gen(function* () {
          while (next < ops) yield* target.call("inc", { n: next++ })
        })
        yield* Effect.all(
          Array.from({ length: IN_FLIGHT }, () => lane),
          { concurrency: "unbounded", discard: true }
        )
      })
    )
}

/**
 * Scaling: what `passivateAfter` gives back, and what it costs.
 *
 * - Memory: 100,000 local Conc instances, each called once, then left idle
 *   until `passivateAfter` retires them. Heap (after a forced GC) before
 *   creating them, right after the calls, and after passivation.
 * - Hot path: an idle FastPath Conc call with `passivateAfter` set against
 *   the same call without it, side by side (the call path reads no clock;
 *   the ratio should be ~1).
 *
 * Run alone with `npx node --expose-gc bench/scaling.bench.ts`.
 */
import { Deferred, Effect, Schema } from "effect"
import { Corps, Worker } from "../src/index.ts"
import { throughputSideBySide } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const INSTANCES = 100_000
const OPS = 200_000
const MB = 1024 * 1024

class Session extends Worker.Service<Session>()("Session", {
  touch: { success: Schema.Number }
}) {}

class Plain extends Worker.Service<Plain>()("Plain", {
  bump: { success: Schema.Number },
  bumpSync: { success: Schema.Number }
}) {}

/** The same as Plain: the two side by side show the run's noise floor. */
class Control extends Worker.Service<Control>()("Control", {
  bump: { success: Schema.Number },
  bumpSync: { success: Schema.Number }
}) {}

class Passive extends Worker.Service<Passive>()("Passive", {
  bump: { success: Schema.Number },
  bumpSync: { success: Schema.Number }
}) {}

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new Error("run with --expose-gc (npm run bench does)")
  collect()
  collect()
}

const heapMb = (): number => {
  gc()
  return process.memoryUsage().heapUsed / MB
}

/** Both benchmarks: memory given back by passivation, and the hot path with it on and off. */
export const runPassivation = async (): Promise<void> => {
  await runPassivationMemory()
  await runPassivationFastPath()
}

/** 100,000 Concs used once, then idle past `passivateAfter`: heap before, while live, after passivation. */
export const runPassivationMemory = async (): Promise<void> => {
  section(`Passivation: ${INSTANCES.toLocaleString("en-US")} local Concs used once, then idle (heap after forced GC)`)
  const keys = Array.from({ length: INSTANCES }, (_, i) => `session-${i}`)
  const program = Effect.gen(function* () {
    // Each instance holds a little state of its own (a session's worth of small data), and a finalizer that
    // counts it closed, so that the bench knows when every one is gone.
    let closed = 0
    const allClosed = yield* Deferred.make<void>()
    const SessionLive = Session.conc(
      (key) =>
        Effect.gen(function* () {
          const data = { key, visits: [1, 2, 3], opened: Date.now() }
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              if (++closed === INSTANCES) Deferred.doneUnsafe(allClosed, Effect.void)
            })
          )
          return { touch: () => data.visits.length }
        }),
      { passivateAfter: "1 second" }
    )
    const before = heapMb()
    yield* Effect.scoped(
      Effect.gen(function* () {
        const session = yield* Session
        for (const key of keys) yield* session.instance(key).touch()
        const used = heapMb()
        const start = performance.now()
        yield* Deferred.await(allClosed)
        const waited = (performance.now() - start) / 1000
        // The last finalizer has run, not yet the sweep's end (its last reports): let it finish before measuring.
        yield* Effect.sleep("200 millis")
        const after = heapMb()
        figure("passivation_heap_before_mb", before, "MB")
        figure("passivation_heap_used_mb", used, "MB  (100,000 live instances)")
        figure("passivation_heap_after_mb", after, "MB  (after passivateAfter: 1 s)")
        figure(
          "passivation_bytes_each",
          ((used - before) * MB) / INSTANCES,
          "B  (per live instance, its state included)"
        )
        ratio("passivation_released_ratio", used - after, used - before, "~1: all of it given back")
        figure(
          "passivation_wait_seconds",
          waited,
          "s  (from after the calls and a GC until the last finalizer ran: idle 1–1.5 s, then closing)"
        )
      }).pipe(Effect.provide(Corps.layer([SessionLive], { placement: {} })))
    )
  })
  await Effect.runPromise(program)
}

const counterOf = () =>
  Effect.sync(() => {
    let count = 0
    return { bump: () => Effect.sync(() => ++count), bumpSync: () => ++count }
  })

/** The FastPath Conc call with `passivateAfter` set and without, interleaved round by round. */
export const runPassivationFastPath = async (): Promise<void> => {
  section(`Passivation: FastPath Conc calls with passivateAfter vs without (${OPS.toLocaleString("en-US")} per round)`)
  const loop = (call: () => Effect.Effect<unknown, unknown>) => (ops: number) =>
    Effect.gen(function* () {
      for (let i = 0; i < ops; i++) yield* call()
    })
  const program = Effect.gen(function* () {
    const plain = yield* Plain
    const passive = yield* Passive
    const control = yield* Control
    const context = yield* Effect.context<never>()
    const run = (make: (ops: number) => Effect.Effect<void, unknown>) => (ops: number) =>
      Effect.runPromise(Effect.provideContext(make(ops), context))
    return yield* Effect.promise(() =>
      throughputSideBySide(
        {
          onSync: run(loop(() => passive.bumpSync())),
          offSync: run(loop(() => plain.bumpSync())),
          controlSync: run(loop(() => control.bumpSync())),
          onEffect: run(loop(() => passive.bump())),
          offEffect: run(loop(() => plain.bump()))
        },
        { ops: OPS, rounds: 11, warmup: 2 }
      )
    )
  })
  const rates = await Effect.runPromise(
    program.pipe(
      Effect.provide(
        Corps.layer(
          [
            Plain.conc(counterOf()),
            Control.conc(counterOf()),
            // Long enough that no sweep retires it during the run: only the call path is compared.
            Passive.conc(counterOf(), { passivateAfter: "1 hour" })
          ],
          { placement: {} }
        )
      )
    )
  )
  figure("passivation_fastpath_off_calls_per_sec", rates.offSync!, "calls/s  (synchronous handler)")
  figure("passivation_fastpath_on_calls_per_sec", rates.onSync!, "calls/s")
  ratio("passivation_fastpath_ratio", rates.onSync!, rates.offSync!, "~1")
  ratio("passivation_fastpath_effect_ratio", rates.onEffect!, rates.offEffect!, "~1 (Effect handler)")
  // Two identical Concs without the option: how far apart noise alone puts them in this run.
  ratio("passivation_fastpath_control_ratio", rates.controlSync!, rates.offSync!, "the noise floor: both without")
}

if (import.meta.main) {
  setTimeout(() => process.exit(2), 300_000).unref()
  await runPassivation()
  printJson()
  process.exit(0)
}

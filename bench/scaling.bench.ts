/**
 * Scaling, side by side with its baselines (issue 9):
 *
 * `runScaling` — autoscaling under a burst: idle → a burst of CPU-bound
 * ~1 ms tasks that needs every core → idle, on
 * - a scaling thread Env `{ min: 1, max: cores }` (default policy),
 * - a fixed thread Env of `cores` threads (the reference),
 * - Piscina with `minThreads: 1, maxThreads: cores` and an idle timeout
 *   equal to the scaling Env's cooldown.
 * Figures: time from the burst's start until throughput (over a sliding
 * 100 ms window) reaches 90% of the fixed Env's, for the scaling Env and for
 * Piscina; the burst's completion time against the fixed Env's; and the time
 * from the burst's end until the scaling Env is back at `min` (its last Env
 * removed), against its cooldown.
 *
 * `runPassivation` — what `passivateAfter` gives back, and what it costs:
 * - Memory: 100,000 local Conc instances, each called once, then left idle
 *   until `passivateAfter` retires them. Heap (after a forced GC) before
 *   creating them, right after the calls, and after passivation.
 * - Hot path: an idle FastPath Conc call with `passivateAfter` set against
 *   the same call without it, side by side (the call path reads no clock;
 *   the ratio should be ~1).
 *
 * Run alone with `npx node --expose-gc bench/scaling.bench.ts`.
 */
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import { Deferred, Effect, Layer, ManagedRuntime, References, Schema, Stream } from "effect"
import { Piscina } from "piscina"
import { Corps, Scaling, Worker } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"
import { calibrate } from "./baselines/cpuBound.ts"
import { fixture } from "./baselines/pool.ts"
import { Bench, BenchLive } from "./corps/workers.ts"
import { median, throughputSideBySide } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const module = new URL("./corps/workers.ts", import.meta.url).href
const CORES = availableParallelism()
/** Tasks in one burst: about a second of work for every core. */
const BURST_TASKS = 1000 * CORES
/** Calls kept in flight during the burst: enough to keep every core busy. */
const IN_FLIGHT = 8 * CORES
const WINDOW_MS = 100
const ROUNDS = 2
const COOLDOWN_MS = Scaling.defaults.downAfterMillis

/** One burst's completion times (ms from its start) and its total duration. */
interface Burst {
  readonly done: ReadonlyArray<number>
  readonly totalMs: number
}

/** Runs `BURST_TASKS` calls of `call` with `IN_FLIGHT` in flight; records when each completes (Piscina's driver). */
const burst = async (call: (seed: number) => Promise<number>): Promise<Burst> => {
  const done: Array<number> = []
  let next = 0
  const start = performance.now()
  const lane = async () => {
    while (next < BURST_TASKS) {
      await call(next++)
      done.push(performance.now() - start)
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
  return { done, totalMs: performance.now() - start }
}

/** Tasks per second over the whole burst. */
const rateOf = (b: Burst) => (b.done.length * 1000) / b.totalMs

/** The end of the first `WINDOW_MS` window whose rate reaches `target` tasks/s (the burst's end if none). */
const timeToRate = (b: Burst, target: number): number => {
  const needed = (target * WINDOW_MS) / 1000
  let from = 0
  for (let to = 0; to < b.done.length; to++) {
    while (b.done[to]! - b.done[from]! > WINDOW_MS) from++
    if (to - from + 1 >= needed && b.done[to]! >= WINDOW_MS) return b.done[to]!
  }
  return b.totalMs
}

/** A Corps with Bench in a thread Env of `count`, and what it reports. */
const startCorps = async (count: number | { readonly min: number; readonly max: number }) => {
  const runtime = ManagedRuntime.make(
    Corps.layer([BenchLive], {
      module,
      placement: { envs: { pool: { kind: "thread", count } }, default: "pool" }
    }).pipe(
      Layer.provide(NodeEnv.layer),
      // The scaling events are read below; their log lines would drown the figures.
      Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error"))
    )
  )
  const removed: Array<number> = []
  // The Envs running (started at build, or since, and not removed): back at min when it has `min` again.
  const running = new Set(Array.from({ length: typeof count === "number" ? count : count.min }, (_, i) => i))
  const bench = await runtime.runPromise(
    Effect.gen(function* () {
      yield* Effect.forkDetach(
        Corps.events.pipe(
          Stream.runForEach((event) =>
            Effect.sync(() => {
              if (event._tag === "EnvStarted") running.add(event.index)
              if (event._tag === "EnvRemoved") {
                running.delete(event.index)
                removed.push(performance.now())
              }
            })
          )
        )
      )
      // At rest: the warm spare has started (3 s at most).
      yield* Corps.events.pipe(
        Stream.filter((event) => event._tag === "SpareReady"),
        Stream.runHead,
        Effect.timeout("3 seconds"),
        Effect.ignore
      )
      return yield* Effect.service(Bench)
    })
  )
  return {
    // Driven from inside the runtime, one fiber per lane, as a program using the Corps would.
    burst: (iterations: number): Promise<Burst> =>
      runtime.runPromise(
        Effect.gen(function* () {
          const done: Array<number> = []
          let next = 0
          const start = performance.now()
          const lane = Effect.gen(function* () {
            while (next < BURST_TASKS) {
              yield* bench.spin({ seed: next++, iterations })
              done.push(performance.now() - start)
            }
          })
          yield* Effect.all(
            Array.from({ length: IN_FLIGHT }, () => lane),
            { concurrency: "unbounded", discard: true }
          )
          return { done, totalMs: performance.now() - start }
        })
      ),
    size: () => running.size,
    removed,
    close: () => runtime.dispose()
  }
}

/** Waits until `done()` holds, polling every 20 ms, for at most `limitMs`; answers the time waited. */
const waitUntil = async (done: () => boolean, limitMs: number): Promise<number> => {
  const start = performance.now()
  while (!done() && performance.now() - start < limitMs) await new Promise((r) => setTimeout(r, 20))
  return performance.now() - start
}

/** Runs the scaling benchmark and records its figures (report.ts); does not print the closing JSON. */
export const runScaling = async (): Promise<void> => {
  section(
    `scaling: idle → burst of ${BURST_TASKS} CPU tasks of ~1 ms, ${IN_FLIGHT} in flight → idle; ${CORES} cores (${ROUNDS} rounds, medians)`
  )
  const iterations = calibrate(1)
  const fixed = await startCorps(CORES)
  const scaling = await startCorps({ min: 1, max: CORES })
  const piscina = new Piscina({
    filename: fileURLToPath(fixture("cpuTask.ts")),
    minThreads: 1,
    maxThreads: CORES,
    idleTimeout: COOLDOWN_MS
  })
  const piscinaCall = (seed: number) => piscina.run({ seed, iterations }) as Promise<number>
  const results: Record<"fixed" | "scaling" | "piscina", Array<Burst>> = { fixed: [], scaling: [], piscina: [] }
  const backToMin: Array<number> = []
  const piscinaBackToMin: Array<number> = []
  try {
    // Warm every path once (JIT in the Envs, Piscina's task file), then let the scaling Env and Piscina go idle.
    await fixed.burst(iterations)
    await burst(piscinaCall)
    await waitUntil(() => piscina.threads.length === 1, COOLDOWN_MS + 5000)
    for (let round = 0; round < ROUNDS; round++) {
      results.fixed.push(await fixed.burst(iterations))
      if (scaling.size() !== 1) throw new Error(`scaling Env not at min before the burst: ${scaling.size()}`)
      const seen = scaling.removed.length
      results.scaling.push(await scaling.burst(iterations))
      const end = performance.now()
      await waitUntil(() => scaling.size() === 1 && scaling.removed.length > seen, COOLDOWN_MS + 10_000)
      if (scaling.size() !== 1 || scaling.removed.length === seen) {
        throw new Error(`scaling Env not back at min ${COOLDOWN_MS + 10_000} ms after the burst`)
      }
      backToMin.push(scaling.removed.at(-1)! - end)
      results.piscina.push(await burst(piscinaCall))
      piscinaBackToMin.push(await waitUntil(() => piscina.threads.length === 1, COOLDOWN_MS + 10_000))
    }
  } finally {
    await Promise.allSettled([fixed.close(), scaling.close(), piscina.destroy()])
  }
  const fixedRate = median(results.fixed.map(rateOf))
  const fixedMs = median(results.fixed.map((b) => b.totalMs))
  const scalingMs = median(results.scaling.map((b) => b.totalMs))
  const piscinaMs = median(results.piscina.map((b) => b.totalMs))
  figure("scaling_fixed_burst_ms", fixedMs, "ms (fixed Env at max)")
  figure("scaling_burst_ms", scalingMs, "ms (scaling Env 1..cores)")
  figure("scaling_piscina_burst_ms", piscinaMs, "ms (Piscina 1..cores)")
  figure("scaling_fixed_time_to_90pct_ms", median(results.fixed.map((b) => timeToRate(b, 0.9 * fixedRate))), "ms")
  figure(
    "scaling_time_to_90pct_ms",
    median(results.scaling.map((b) => timeToRate(b, 0.9 * fixedRate))),
    "ms (goal ≤ 1000)"
  )
  figure("scaling_piscina_time_to_90pct_ms", median(results.piscina.map((b) => timeToRate(b, 0.9 * fixedRate))), "ms")
  ratio("scaling_burst_ratio_vs_fixed", scalingMs, fixedMs, "≤ 1.1")
  ratio("scaling_piscina_burst_ratio_vs_fixed", piscinaMs, fixedMs)
  figure("scaling_back_to_min_ms", median(backToMin), `ms (goal ≤ cooldown ${COOLDOWN_MS} + 1000)`)
  figure("scaling_piscina_back_to_min_ms", median(piscinaBackToMin), `ms (idleTimeout ${COOLDOWN_MS})`)
}

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
  await runScaling()
  await runPassivation()
  printJson()
  process.exit(0)
}

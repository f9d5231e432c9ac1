/**
 * effect-corps seen through the baselines' interface: a started Corps with
 * the Bench Func placed in 2 threads or 2 processes, driven with 64 calls in
 * flight exactly like the raw pools, so rounds can be interleaved with them.
 */
import { Effect, Layer, ManagedRuntime, Stream } from "effect"
import { Corps } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { type BaselinePool, IN_FLIGHT, POOL_SIZE } from "../baselines/pool.ts"
import { percentile } from "../lib/measure.ts"
import { Bench, BenchLive } from "./workers.ts"

const module = new URL("./workers.ts", import.meta.url).href

/** A running Corps with Bench in `kind` Envs, and its handle; `below` is provided under it (monitoring, say). */
export const startCorps = async (
  kind: "thread" | "process",
  count = POOL_SIZE,
  below: Layer.Layer<never, unknown> = Layer.empty
) => {
  const runtime = ManagedRuntime.make(
    Corps.layer([BenchLive], {
      module,
      placement: { envs: { pool: { kind, count } }, default: "pool" }
    }).pipe(Layer.provide(NodeEnv.layer), Layer.provideMerge(below))
  )
  const bench = await runtime.runPromise(
    Effect.gen(function* () {
      // Measure the pool at rest: the warm spare starts in the background once the Corps is built, and
      // importing the module there keeps a core busy (and awake) for a few hundred ms, which would
      // flatter the latency figure. (The spare may have been quicker than this subscription: 3 s at most.)
      yield* Corps.events.pipe(
        Stream.filter((event) => event._tag === "SpareReady"),
        Stream.runHead,
        Effect.timeout("3 seconds"),
        Effect.ignore
      )
      return yield* Effect.service(Bench)
    })
  )
  return { runtime, bench }
}

/** Drives `ops` calls of `inc` with `IN_FLIGHT` fibers, each calling in a loop; checks the sum. */
const drive = (bench: Bench["Service"], ops: number) =>
  Effect.gen(function* () {
    let next = 0
    let sum = 0
    const lane = Effect.gen(function* () {
      while (next < ops) {
        // Not `sum += yield* ...`: that reads `sum` before suspending and loses updates.
        const r = yield* bench.inc({ n: next++ })
        sum += r
      }
    })
    yield* Effect.all(
      Array.from({ length: Math.min(IN_FLIGHT, ops) }, () => lane),
      {
        concurrency: "unbounded",
        discard: true
      }
    )
    const expected = (ops * (ops + 1)) / 2
    if (sum !== expected) return yield* Effect.die(new Error(`wrong results: sum ${sum}, expected ${expected}`))
  })

/** effect-corps with Bench in 2 Envs of `kind`, as a baseline pool; `below` as in {@link startCorps}. */
export const corpsPool = async (
  kind: "thread" | "process",
  below?: Layer.Layer<never, unknown>
): Promise<BaselinePool> => {
  const { runtime, bench } = await startCorps(kind, POOL_SIZE, below)
  return {
    run: (ops) => runtime.runPromise(drive(bench, ops)),
    close: () => runtime.dispose()
  }
}

/** One call in flight to one thread Env: p50 and p99 round trip in µs. */
export const corpsThreadLatency = async (calls = 20_000, warmup = 2000) => {
  const { runtime, bench } = await startCorps("thread", 1)
  try {
    return await runtime.runPromise(
      Effect.gen(function* () {
        for (let i = 0; i < warmup; i++) yield* bench.inc({ n: i })
        const samples = new Array<number>(calls)
        for (let i = 0; i < calls; i++) {
          const start = performance.now()
          const r = yield* bench.inc({ n: i })
          samples[i] = (performance.now() - start) * 1000
          if (r !== i + 1) return yield* Effect.die(new Error(`wrong result ${r} for ${i}`))
        }
        return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
      })
    )
  } finally {
    await runtime.dispose()
  }
}

/** Runs `tasks` CPU-bound jobs on 2 thread Envs (all in flight); returns the sum of results. */
export const corpsCpu = async () => {
  const { runtime, bench } = await startCorps("thread")
  return {
    run: (inputs: ReadonlyArray<{ readonly seed: number; readonly iterations: number }>) =>
      runtime.runPromise(
        Effect.map(
          Effect.forEach(inputs, (input) => bench.spin(input), { concurrency: "unbounded" }),
          (results) => results.reduce((a, b) => a + b, 0)
        )
      ),
    close: () => runtime.dispose()
  }
}

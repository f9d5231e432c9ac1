/**
 * Baselines for the thread and process benchmarks: raw Node and peer
 * libraries, measured side by side in one run so that effect-corps figures
 * can be compared against them. Run with `npx node bench/baselines.bench.ts`.
 */

import { cpuBound } from "./baselines/cpuBound.ts"
import { piscinaBest, piscinaPool } from "./baselines/piscina.ts"
import type { BaselinePool } from "./baselines/pool.ts"
import { rawProcess, rawProcessBatched } from "./baselines/rawProcess.ts"
import { rawThreadLatency, rawThreads, rawThreadsBatched } from "./baselines/rawThreads.ts"
import { tinypoolPool } from "./baselines/tinypool.ts"
import { corpsCpu, corpsPool, corpsThreadLatency } from "./corps/pools.ts"
import { throughputSideBySide } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

// One op count for every pool of a group keeps the rounds interleaved; it is sized
// so the slowest pool (Tinypool, ~30k/s here) takes about a second per round.
const THREAD_OPS = 30_000
const PROCESS_OPS = 30_000
const ROUNDS = 7

/** Closes every pool, even if some fail to close. */
const closeAll = async (pools: ReadonlyArray<BaselinePool | undefined>): Promise<void> => {
  await Promise.allSettled(pools.map((p) => p?.close()))
}

/** Runs every baseline and records its figures (report.ts); does not print the closing JSON. */
export const runBaselines = async (): Promise<void> => {
  section("threads: n => n + 1, 2 threads, 64 in flight (ops/s, median of interleaved rounds)")
  {
    const pools: Array<BaselinePool | undefined> = []
    try {
      const raw = await rawThreads()
      pools.push(raw)
      const rawBatched = await rawThreadsBatched()
      pools.push(rawBatched)
      const piscinaDefault = await piscinaPool()
      pools.push(piscinaDefault)
      const tinypool = await tinypoolPool()
      pools.push(tinypool)
      const corps = await corpsPool("thread")
      pools.push(corps)
      const best = await piscinaBest()
      pools.push(best.pool)
      for (const [setting, rate] of Object.entries(best.tried)) {
        figure(`threads.piscinaTune.c${setting}.opsPerSec`, rate, "ops/s (tuning, alone)")
      }
      figure("threads.piscinaBest.concurrentTasksPerWorker", best.concurrentTasksPerWorker, "tasks per worker")
      const rates = await throughputSideBySide(
        {
          raw: raw.run,
          rawBatched: rawBatched.run,
          piscinaDefault: piscinaDefault.run,
          piscinaBest: best.pool.run,
          tinypool: tinypool.run,
          corps: corps.run
        },
        { ops: THREAD_OPS, rounds: ROUNDS, warmup: 1 }
      )
      for (const [name, rate] of Object.entries(rates)) figure(`threads.${name}.opsPerSec`, rate, "ops/s")
      ratio("threads.rawBatched.vsRaw", rates["rawBatched"]!, rates["raw"]!)
      ratio("threads.piscinaBest.vsRaw", rates["piscinaBest"]!, rates["raw"]!)
      ratio("threads.corps.vsRawBatched", rates["corps"]!, rates["rawBatched"]!, "≥ 0.6")
      ratio("threads.corps.vsPiscinaBest", rates["corps"]!, rates["piscinaBest"]!, "≥ 3")
    } finally {
      await closeAll(pools)
    }
  }

  section("threads: latency, 1 call in flight, raw postMessage ping-pong (20k calls)")
  {
    const latency = await rawThreadLatency()
    const corps = await corpsThreadLatency()
    figure("threads.rawLatency.p50Us", latency.p50, "µs")
    figure("threads.rawLatency.p99Us", latency.p99, "µs")
    figure("threads.corpsLatency.p50Us", corps.p50, "µs")
    figure("threads.corpsLatency.p99Us", corps.p99, "µs")
    ratio("threads.corpsLatency.p50VsRaw", corps.p50, latency.p50, "≤ 1.5")
  }

  section("process: n => n + 1, 2 forked processes (advanced serialization), 64 in flight (ops/s)")
  {
    const pools: Array<BaselinePool | undefined> = []
    try {
      const raw = await rawProcess()
      pools.push(raw)
      const rawBatched = await rawProcessBatched()
      pools.push(rawBatched)
      const corps = await corpsPool("process")
      pools.push(corps)
      const rates = await throughputSideBySide(
        { raw: raw.run, rawBatched: rawBatched.run, corps: corps.run },
        { ops: PROCESS_OPS, rounds: ROUNDS, warmup: 1 }
      )
      for (const [name, rate] of Object.entries(rates)) figure(`process.${name}.opsPerSec`, rate, "ops/s")
      ratio("process.rawBatched.vsRaw", rates["rawBatched"]!, rates["raw"]!)
      ratio("process.corps.vsRawBatched", rates["corps"]!, rates["rawBatched"]!, "≥ 0.5")
    } finally {
      await closeAll(pools)
    }
  }

  section("cpu: 400 tasks of ~1 ms (wall time per round, median)")
  {
    const corps = await corpsCpu()
    const cpu = await cpuBound({ extra: { corps: corps.run } }).finally(() => corps.close())
    figure("cpu.taskMs", cpu.taskMs, "ms per task (main thread)")
    figure("cpu.mainThread.ms", cpu.mainThreadMs, "ms")
    figure("cpu.rawThreads.ms", cpu.rawThreadsMs, "ms")
    figure("cpu.piscina.ms", cpu.piscinaMs, "ms")
    figure("cpu.rawThreads.speedup", cpu.rawThreadsSpeedup, "×")
    figure("cpu.piscina.speedup", cpu.piscinaSpeedup, "×")
    figure("cpu.corps.ms", cpu.extraMs["corps"]!, "ms")
    ratio("cpu.corps.speedup", cpu.mainThreadMs, cpu.extraMs["corps"]!, "≥ 1.85")
  }
}

if (import.meta.main) {
  // Hard guard: a hung pool or a child stuck in process.exit must not hold the run forever.
  setTimeout(() => {
    console.error("baselines.bench: still running after 120 s, exiting")
    process.exit(1)
  }, 120_000).unref()
  const start = performance.now()
  await runBaselines()
  console.log(`\n(baselines took ${((performance.now() - start) / 1000).toFixed(1)} s)`)
  printJson()
}

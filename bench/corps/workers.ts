/**
 * The Workers the Env benchmarks run: a trivial `inc` (round-trip cost) and
 * the same CPU-bound job as the raw baselines (`spin`).
 */
import { Schema } from "effect"
import { Worker } from "../../src/index.ts"
import { cpuWork } from "../baselines/fixtures/cpuWork.ts"

/** A stateless Worker for benchmarks. */
export class Bench extends Worker.Service<Bench>()("Bench", {
  inc: { payload: { n: Schema.Number }, success: Schema.Number },
  spin: { payload: { seed: Schema.Number, iterations: Schema.Number }, success: Schema.Number }
}) {}

/** Bench's implementation: plain synchronous handlers. */
export const BenchLive = Bench.func({
  inc: ({ n }) => n + 1,
  spin: ({ seed, iterations }) => cpuWork(seed, iterations)
})

/**
 * Timing helpers for benchmarks. Each measurement runs warm-up rounds first,
 * then several timed rounds, and reports the median, which is steadier than
 * the mean on a noisy 2-core machine.
 */

export interface MeasureOptions {
  /** Operations per timed round. */
  readonly ops: number
  /** Timed rounds (median reported). Default 5. */
  readonly rounds?: number | undefined
  /** Untimed warm-up rounds. Default 2. */
  readonly warmup?: number | undefined
}

/**
 * Measures the throughput (operations per second) of `round`, which must
 * perform `ops` operations and resolve when they are done.
 */
export const throughput = async (
  round: (ops: number) => Promise<void> | void,
  options: MeasureOptions
): Promise<number> => {
  const rounds = options.rounds ?? 5
  for (let i = 0; i < (options.warmup ?? 2); i++) await round(options.ops)
  const rates: Array<number> = []
  for (let i = 0; i < rounds; i++) {
    const start = performance.now()
    await round(options.ops)
    rates.push(options.ops / ((performance.now() - start) / 1000))
  }
  return median(rates)
}

/** Runs several measurements interleaved round by round, so that machine noise hits each alike. */
export const throughputSideBySide = async (
  rounds: Record<string, (ops: number) => Promise<void> | void>,
  options: MeasureOptions
): Promise<Record<string, number>> => {
  const names = Object.keys(rounds)
  const rates: Record<string, Array<number>> = Object.fromEntries(names.map((n) => [n, []]))
  for (let i = 0; i < (options.warmup ?? 2); i++) for (const n of names) await rounds[n]!(options.ops)
  for (let i = 0; i < (options.rounds ?? 5); i++) {
    for (const n of names) {
      const start = performance.now()
      await rounds[n]!(options.ops)
      rates[n]!.push(options.ops / ((performance.now() - start) / 1000))
    }
  }
  return Object.fromEntries(names.map((n) => [n, median(rates[n]!)]))
}

/** The median of a non-empty list. */
export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The p-th percentile (0..100) of a non-empty list. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

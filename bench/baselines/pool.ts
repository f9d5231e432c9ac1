/**
 * What every baseline hands the orchestrator: a started, warm pool that can
 * push `ops` trivial `n => n + 1` calls through with a fixed number in flight.
 */

/** Workers (threads or processes) in every baseline pool. */
export const POOL_SIZE = 2

/** Calls kept in flight across a pool while measuring throughput. */
export const IN_FLIGHT = 64

/** A started, warm pool: `run(ops)` performs `ops` verified calls; `close()` frees every worker. */
export interface BaselinePool {
  readonly run: (ops: number) => Promise<void>
  readonly close: () => Promise<void>
}

/**
 * Performs `ops` calls of `call(n)` (n = 0..ops-1) keeping `inFlight` pending,
 * and checks that the results add up to the sum of `n + 1`, so a pool that
 * drops or corrupts replies fails instead of looking fast.
 */
export const driveInFlight = async (
  ops: number,
  inFlight: number,
  call: (n: number) => Promise<number>
): Promise<void> => {
  let next = 0
  let sum = 0
  const lane = async (): Promise<void> => {
    while (next < ops) {
      const n = next++
      // Not `sum += await ...`: that would read `sum` before suspending and lose updates.
      const r = await call(n)
      sum += r
    }
  }
  const lanes: Array<Promise<void>> = []
  for (let i = 0; i < Math.min(inFlight, ops); i++) lanes.push(lane())
  await Promise.all(lanes)
  // Sum of (n + 1) for n in 0..ops-1; exact in doubles far beyond any ops used here.
  const expected = (ops * (ops + 1)) / 2
  if (sum !== expected) throw new Error(`wrong results: sum ${sum}, expected ${expected}`)
}

/** Resolves `promise`, or rejects after `ms` with a message naming `what`. */
export const withTimeout = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)
    promise.then(
      (a) => {
        clearTimeout(timer)
        resolve(a)
      },
      (e: unknown) => {
        clearTimeout(timer)
        reject(e)
      }
    )
  })

/** Resolves the path of a fixture entry file next to this module. */
export const fixture = (name: string): URL => new URL(`./fixtures/${name}`, import.meta.url)

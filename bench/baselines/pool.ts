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

/**
 * The request/reply bookkeeping shared by the raw thread and process pools:
 * ids, pending promises, least-in-flight dispatch, and (when `batched`) one
 * message per endpoint per microtask flush. Endpoints answer `{ id, n }` with
 * `{ id, r }`, or an array of them.
 */
export interface RawDispatch<I, O> {
  readonly call: (n: I) => Promise<O>
  /** Feeds a message received from endpoint `index`. */
  readonly receive: (index: number, message: unknown) => void
  readonly failAll: (error: Error) => void
  /** Fails every pending call and refuses later ones. */
  readonly stop: () => void
  readonly stopped: () => boolean
}

/** Makes the bookkeeping for endpoints reached through `send` (one function per endpoint). */
export const makeRawDispatch = <I, O>(
  send: ReadonlyArray<(message: unknown) => void>,
  batched: boolean
): RawDispatch<I, O> => {
  const pending = new Map<number, PromiseWithResolvers<O>>()
  const inFlight = send.map(() => 0)
  const outbox: Array<Array<{ id: number; n: I }>> = send.map(() => [])
  let nextId = 0
  let stopped = false
  let flushScheduled = false

  const failAll = (error: Error): void => {
    for (const p of pending.values()) p.reject(error)
    pending.clear()
  }
  const flush = (): void => {
    flushScheduled = false
    for (let i = 0; i < send.length; i++) {
      if (outbox[i]!.length === 0) continue
      send[i]!(outbox[i])
      outbox[i] = []
    }
  }
  // Least-in-flight dispatch: with equal endpoints this alternates like round robin.
  const pick = (): number => {
    let best = 0
    for (let i = 1; i < send.length; i++) if (inFlight[i]! < inFlight[best]!) best = i
    return best
  }
  const settle = (index: number, reply: { readonly id: number; readonly r: O }): void => {
    const p = pending.get(reply.id)
    if (p === undefined) return
    pending.delete(reply.id)
    inFlight[index]!--
    p.resolve(reply.r)
  }
  return {
    call: (n) => {
      if (stopped) return Promise.reject(new Error("pool closed"))
      const id = nextId++
      const p = Promise.withResolvers<O>()
      pending.set(id, p)
      const index = pick()
      inFlight[index]!++
      if (batched) {
        outbox[index]!.push({ id, n })
        if (!flushScheduled) {
          flushScheduled = true
          queueMicrotask(flush)
        }
      } else {
        send[index]!({ id, n })
      }
      return p.promise
    },
    receive: (index, message) => {
      if (Array.isArray(message)) for (const reply of message) settle(index, reply)
      else settle(index, message as { readonly id: number; readonly r: O })
    },
    failAll,
    stop: () => {
      stopped = true
      failAll(new Error("pool closed"))
    },
    stopped: () => stopped
  }
}

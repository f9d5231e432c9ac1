/**
 * Raw child_process baselines: `fork` IPC echo with 2 processes and advanced
 * (structured clone) serialization, one `send` per call or one per flush.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { type BaselinePool, driveInFlight, fixture, IN_FLIGHT, POOL_SIZE, withTimeout } from "./pool.ts"

interface Slot {
  readonly child: ChildProcess
  inFlight: number
  outbox: Array<{ id: number; n: number }>
}

interface Reply {
  readonly id: number
  readonly r: number
}

// Every child started and not yet seen to exit: killed on the way out whatever happens,
// so that a failed or interrupted benchmark never leaves processes behind.
const live = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

/** Stops a child: SIGTERM, then SIGKILL if it has not exited within `graceMs` (Node can hang in process.exit). */
export const killChild = async (child: ChildProcess, graceMs = 1000): Promise<void> => {
  const done = exited(child)
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
  await done
  clearTimeout(timer)
}

const WARMUP_CALLS = 5000

const startProcesses = async (batched: boolean): Promise<BaselinePool> => {
  const pending = new Map<number, PromiseWithResolvers<number>>()
  let nextId = 0
  let closing = false
  let flushScheduled = false

  const failAll = (error: Error): void => {
    for (const p of pending.values()) p.reject(error)
    pending.clear()
  }

  const slots: Array<Slot> = []
  const ready: Array<Promise<void>> = []
  for (let i = 0; i < POOL_SIZE; i++) {
    const child = fork(fileURLToPath(fixture("echoProcess.ts")), [], {
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    live.add(child)
    const slot: Slot = { child, inFlight: 0, outbox: [] }
    slots.push(slot)
    ready.push(
      new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve)
        child.once("error", reject)
      })
    )
    const settle = (reply: Reply): void => {
      const p = pending.get(reply.id)
      if (p === undefined) return
      pending.delete(reply.id)
      slot.inFlight--
      p.resolve(reply.r)
    }
    child.on("message", (msg: Reply | ReadonlyArray<Reply>) => {
      if (Array.isArray(msg)) for (const reply of msg) settle(reply)
      else settle(msg as Reply)
    })
    child.on("error", (e) => failAll(e))
    child.once("exit", (code, signal) => {
      live.delete(child)
      if (!closing) failAll(new Error(`child exited (code ${code}, signal ${signal})`))
    })
  }

  const flush = (): void => {
    flushScheduled = false
    for (const slot of slots) {
      if (slot.outbox.length === 0) continue
      slot.child.send(slot.outbox)
      slot.outbox = []
    }
  }

  const pick = (): Slot => {
    let best = slots[0]!
    for (let i = 1; i < slots.length; i++) if (slots[i]!.inFlight < best.inFlight) best = slots[i]!
    return best
  }

  const call = (n: number): Promise<number> => {
    if (closing) return Promise.reject(new Error("pool closed"))
    const id = nextId++
    const p = Promise.withResolvers<number>()
    pending.set(id, p)
    const slot = pick()
    slot.inFlight++
    if (batched) {
      slot.outbox.push({ id, n })
      if (!flushScheduled) {
        flushScheduled = true
        queueMicrotask(flush)
      }
    } else {
      slot.child.send({ id, n })
    }
    return p.promise
  }

  const close = async (): Promise<void> => {
    if (closing) return
    closing = true
    failAll(new Error("pool closed"))
    await Promise.all(slots.map((s) => killChild(s.child)))
  }

  const run = (ops: number): Promise<void> => driveInFlight(ops, IN_FLIGHT, call)
  try {
    await withTimeout(Promise.all(ready), 10_000, "spawning child processes")
    // The first reply also proves the child has loaded its entry file.
    await withTimeout(run(WARMUP_CALLS), 20_000, "warming child processes")
  } catch (e) {
    await close()
    throw e
  }
  return { run, close }
}

/** Two forked processes, one IPC `send` per call, 64 in flight. */
export const rawProcess = (): Promise<BaselinePool> => startProcesses(false)

/** Two forked processes, every flush of requests (and of replies) sent as one IPC message. */
export const rawProcessBatched = (): Promise<BaselinePool> => startProcesses(true)

/**
 * Raw child_process baselines: `fork` IPC echo with 2 processes and advanced
 * (structured clone) serialization, one `send` per call or one per flush.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import {
  type BaselinePool,
  driveInFlight,
  fixture,
  IN_FLIGHT,
  makeRawDispatch,
  POOL_SIZE,
  withTimeout
} from "./pool.ts"

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
  const children = Array.from({ length: POOL_SIZE }, () => {
    const child = fork(fileURLToPath(fixture("echoProcess.ts")), [], {
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    live.add(child)
    return child
  })
  const dispatch = makeRawDispatch<number, number>(
    children.map((child) => (message: unknown) => child.send(message as object)),
    batched
  )
  const ready = children.map((child, index) => {
    child.on("message", (message: unknown) => dispatch.receive(index, message))
    child.on("error", (e) => dispatch.failAll(e))
    child.once("exit", (code, signal) => {
      live.delete(child)
      if (!dispatch.stopped()) dispatch.failAll(new Error(`child exited (code ${code}, signal ${signal})`))
    })
    return new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve)
      child.once("error", reject)
    })
  })

  const close = async (): Promise<void> => {
    if (dispatch.stopped()) return
    dispatch.stop()
    await Promise.all(children.map((child) => killChild(child)))
  }

  const run = (ops: number): Promise<void> => driveInFlight(ops, IN_FLIGHT, dispatch.call)
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

/**
 * What the tests check is left behind after a Corps closes: the child
 * processes and the worker threads this test process started.
 */
import { readdirSync, readFileSync } from "node:fs"

/** The processes this one started that are still running (Linux: read from /proc). */
export const childPids = (): Array<number> =>
  readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
        // The command name may hold spaces or parentheses: the fields after it start at the last ")".
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid
      } catch {
        return false
      }
    })
    .map(Number)

/** Live worker threads and message ports of this thread. */
export const threadResources = (): number =>
  process.getActiveResourcesInfo().filter((r) => r === "Worker" || r === "MessagePort").length

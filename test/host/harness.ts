/**
 * `corps host` daemons for tests: real processes of the CLI, started on a
 * free port (optionally inside a network namespace), killed at the end.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))

/** The secret of every test daemon. */
export const secret = "test-host-secret-0123456789"

/** A running daemon. */
export interface Daemon {
  readonly address: string
  readonly process: ChildProcess
  /** Everything it wrote on stderr so far (its log). */
  readonly log: () => string
}

const running = new Set<ChildProcess>()

/**
 * Starts `corps host --listen <listen>` (in network namespace `netns` when
 * given) and resolves once it prints its ready line.
 */
export const startDaemon = (options?: {
  readonly listen?: string
  readonly netns?: string
  readonly env?: Record<string, string>
}): Promise<Daemon> =>
  new Promise((resolve, reject) => {
    const listen = options?.listen ?? "127.0.0.1:0"
    const args = [main, "host", "--listen", listen, "--cache-dir", mkdtempSync(join(tmpdir(), "corps-host-cache-"))]
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CORPS_")))
    const env = { ...inherited, CORPS_HOST_SECRET: secret, ...options?.env }
    const child =
      options?.netns === undefined
        ? spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] })
        : spawn("ip", ["netns", "exec", options.netns, process.execPath, ...args], {
            env,
            stdio: ["ignore", "pipe", "pipe"]
          })
    running.add(child)
    let out = ""
    let err = ""
    const timer = setTimeout(() => reject(new Error(`daemon not ready after 60 s: ${err}`)), 60_000)
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const match = /corps-host ready (\S+)/.exec(out)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ address: match[1]!, process: child, log: () => err })
      }
    })
    child.stderr!.on("data", (chunk: Buffer) => {
      err += chunk.toString()
    })
    child.once("exit", (code, signal) => {
      running.delete(child)
      clearTimeout(timer)
      reject(new Error(`daemon exited (${signal ?? code}) before it was ready: ${err}`))
    })
  })

/** SIGKILLs every daemon still running (afterAll). */
export const killAll = (): void => {
  for (const child of running) child.kill("SIGKILL")
  running.clear()
}

/** Polls `condition` every 20 ms until it holds; throws after `timeoutMs`. */
export const until = async (condition: () => boolean, timeoutMs: number, what: string): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

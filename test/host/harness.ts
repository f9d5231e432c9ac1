/**
 * `corps host` daemons for tests: real processes of the CLI, started on a
 * free port (optionally inside a network namespace), killed at the end.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
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
  /** Its cache of shipped code (empty at start). */
  readonly cacheDir: string
  readonly process: ChildProcess
  /** Everything it wrote so far (its log, stdout and stderr). */
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
    const cacheDir = mkdtempSync(join(tmpdir(), "corps-host-cache-"))
    const args = [main, "host", "--listen", listen, "--cache-dir", cacheDir]
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
      err += chunk.toString()
      const match = /corps-host ready (\S+)/.exec(out)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ address: match[1]!, cacheDir, process: child, log: () => err })
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

/** One network namespace joined to the root namespace by a veth pair. */
export interface Namespace {
  readonly name: string
  /** The namespace's own address (where its daemon listens). */
  readonly ip: string
  /** The root side of the veth pair: `ip link set <it> down` cuts the namespace off. */
  readonly veth: string
}

/** The namespaces of one test run, and how to remove them. */
export interface Network {
  readonly namespaces: ReadonlyArray<Namespace>
  readonly cut: (ns: Namespace) => void
  readonly restore: (ns: Namespace) => void
  readonly cleanup: () => void
}

const ip = (...args: Array<string>) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] })

/**
 * Makes `count` network namespaces (`corps-<pid>-<i>`), each with a veth
 * pair to the root namespace and a /24 of its own: the root side is `.1`,
 * the namespace `.2`. Names and subnets are unique per run. Answers
 * `undefined`, having removed what it made, when namespaces are not
 * available (not root, no `ip`), or when `CORPS_TEST_NO_NETNS=1`.
 */
export const makeNetwork = (count: number): Network | undefined => {
  // To run the loopback variant on a machine that has namespaces.
  if (process.env.CORPS_TEST_NO_NETNS === "1") return undefined
  const made: Array<Namespace> = []
  const base = 100 + (process.pid % 100)
  const cleanup = () => {
    for (const ns of made) {
      try {
        ip("netns", "del", ns.name)
      } catch {}
      try {
        ip("link", "del", ns.veth)
      } catch {}
    }
  }
  try {
    for (let i = 0; i < count; i++) {
      const name = `corps-${process.pid}-${i}`
      const veth = `vc${process.pid}${i}`.slice(0, 15)
      const peer = `vp${process.pid}${i}`.slice(0, 15)
      const subnet = `10.${base}.${(Math.floor(process.pid / 100) % 200) + i * 10 + 1}`
      ip("netns", "add", name)
      made.push({ name, ip: `${subnet}.2`, veth })
      ip("link", "add", veth, "type", "veth", "peer", "name", peer)
      ip("link", "set", peer, "netns", name)
      ip("addr", "add", `${subnet}.1/24`, "dev", veth)
      ip("link", "set", veth, "up")
      ip("netns", "exec", name, "ip", "addr", "add", `${subnet}.2/24`, "dev", peer)
      ip("netns", "exec", name, "ip", "link", "set", peer, "up")
      ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
    }
  } catch {
    cleanup()
    return undefined
  }
  process.once("exit", cleanup)
  return {
    namespaces: made,
    cut: (ns) => ip("link", "set", ns.veth, "down"),
    restore: (ns) => ip("link", "set", ns.veth, "up"),
    cleanup
  }
}

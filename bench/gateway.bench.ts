/**
 * The HTTP gateway's requests per second, driven on loopback by a real load
 * generator (autocannon), against the same handler written directly with
 * effect/http (goal: gateway ≥ 0.8 × direct). The server runs in a child
 * process (bench/gateway/server.ts), so the generator and the server each
 * have a thread; both serve one Func in the server's runtime, so the figures
 * compare the HTTP layers, not the Worker.
 *
 * Modes are interleaved round by round (the machine is shared: its load moves
 * over a run) and each figure is the median of its rounds.
 *
 * Run alone with `npx node bench/gateway.bench.ts`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { median } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const ROUNDS = 3
const SECONDS = 4
const CONNECTIONS = 32

/** What is read of autocannon's result (it ships no types). */
interface LoadResult {
  readonly requests: { readonly average: number; readonly total: number }
  readonly latency: { readonly p50: number; readonly p99: number }
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
}

type Autocannon = (options: {
  readonly url: string
  readonly method: "POST"
  readonly connections: number
  readonly duration: number
  readonly headers: Record<string, string>
  readonly body: string
}) => Promise<LoadResult>

const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon
const serverEntry = fileURLToPath(new URL("./gateway/server.ts", import.meta.url))

/** Starts the server in `mode`; resolves with it and its port once it listens. */
const start = (mode: string): Promise<{ readonly child: ChildProcess; readonly port: number }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [serverEntry, mode], { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const match = /PORT (\d+)/.exec(out)
      if (match !== null) resolve({ child, port: Number(match[1]) })
    })
    child.once("exit", (code) => reject(new Error(`bench server ${mode} exited with ${code}: ${out}`)))
  })

/** Kills the server; SIGKILL if it has not gone in 2 s (Node can hang in exit). */
const stop = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    const force = setTimeout(() => child.kill("SIGKILL"), 2000)
    child.once("exit", () => {
      clearTimeout(force)
      resolve()
    })
    child.kill("SIGTERM")
  })

/**
 * The CPU time a process has used, in µs (Linux: /proc; undefined elsewhere). Wall-clock
 * rates swing with the machine's load; the server's CPU per request moves far less.
 */
const cpuMicros = (pid: number | undefined): number | undefined => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    // utime and stime, in clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return undefined
  }
}

// The token bench/gateway/server.ts accepts in its gateway-auth mode.
const TOKEN = "bench-token"
const modes = {
  gateway: {},
  "gateway-auth": { authorization: `Bearer ${TOKEN}` },
  direct: {}
} as const satisfies Record<string, Record<string, string>>

/** The gateway against direct effect/http; records `gateway_*` figures. */
export const runGateway = async (): Promise<void> => {
  section(`gateway: HTTP requests/s on loopback (autocannon, ${CONNECTIONS} connections, ${SECONDS} s rounds)`)
  const servers = await Promise.all(Object.keys(modes).map(async (mode) => [mode, await start(mode)] as const))
  try {
    const rates: Record<string, Array<number>> = Object.fromEntries(Object.keys(modes).map((m) => [m, []]))
    const p99: Record<string, Array<number>> = Object.fromEntries(Object.keys(modes).map((m) => [m, []]))
    const cpu: Record<string, Array<number>> = Object.fromEntries(Object.keys(modes).map((m) => [m, []]))
    const load = (port: number, headers: Record<string, string>, duration: number) =>
      autocannon({
        url: `http://127.0.0.1:${port}/Adder/add`,
        method: "POST",
        connections: CONNECTIONS,
        duration,
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ a: 1, b: 2 })
      })
    // One short round each first: JIT warm-up, connections made.
    for (const [mode, { port }] of servers) await load(port, modes[mode as keyof typeof modes], 1)
    for (let round = 0; round < ROUNDS; round++) {
      for (const [mode, { port, child }] of servers) {
        const before = cpuMicros(child.pid)
        const result = await load(port, modes[mode as keyof typeof modes], SECONDS)
        const after = cpuMicros(child.pid)
        if (before !== undefined && after !== undefined) cpu[mode]!.push((after - before) / result.requests.total)
        if (result.non2xx > 0 || result.errors > 0) {
          throw new Error(`${mode}: ${result.non2xx} non-2xx answers, ${result.errors} errors`)
        }
        rates[mode]!.push(result.requests.average)
        p99[mode]!.push(result.latency.p99)
      }
    }
    const gateway = figure("gateway_http_req_per_s", median(rates.gateway!), "req/s")
    const auth = figure("gateway_http_bearer_req_per_s", median(rates["gateway-auth"]!), "req/s")
    const direct = figure("gateway_direct_effect_http_req_per_s", median(rates.direct!), "req/s")
    figure("gateway_http_p99_ms", median(p99.gateway!), "ms")
    figure("gateway_direct_effect_http_p99_ms", median(p99.direct!), "ms")
    ratio("gateway_vs_direct_effect_http", gateway, direct, "≥ 0.8")
    ratio("gateway_bearer_vs_direct_effect_http", auth, direct)
    if (cpu.gateway!.length > 0) {
      const gatewayCpu = figure("gateway_server_cpu_us_per_req", median(cpu.gateway!), "µs")
      figure("gateway_bearer_server_cpu_us_per_req", median(cpu["gateway-auth"]!), "µs")
      const directCpu = figure("gateway_direct_effect_http_server_cpu_us_per_req", median(cpu.direct!), "µs")
      // Requests per CPU-second, gateway over direct: the same comparison, less sensitive to load.
      ratio("gateway_vs_direct_effect_http_by_cpu", directCpu, gatewayCpu, "≥ 0.8")
    }
  } finally {
    await Promise.all(servers.map(([, { child }]) => stop(child)))
  }
}

if (import.meta.main) {
  await runGateway()
  printJson()
  process.exit(0)
}

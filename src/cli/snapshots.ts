/**
 * What `corps status` and `corps top` share: reading a Snapshot from a
 * running dashboard, and rendering it as text tables.
 *
 * @since 0.3.0
 */
import { Effect, Schema } from "effect"
import { CliError } from "effect/cli"
import { DashboardError } from "../CorpsError.ts"
import type { CorpsEvent } from "../CorpsEvent.ts"
import { type CorpsStats, Snapshot } from "../monitoring/Snapshot.ts"

/**
 * `corps status` or `corps top` could not read a dashboard: printed as one
 * line (no stack trace), then the command exits with code 1.
 *
 * @since 0.3.0
 * @category errors
 */
export class DashboardReadFailed extends Schema.TaggedError<DashboardReadFailed>()("CorpsDashboardReadFailed", {
  command: Schema.String,
  error: DashboardError
}) {
  override get message(): string {
    return `corps ${this.command}: ${this.error.message}`
  }

  override get [CliError.userMessage](): string {
    return this.message
  }
}

/**
 * The base URL of the dashboard at `address`: `host:port`, `:port` (this
 * machine), or an http(s) URL; `undefined` when it is none of these.
 *
 * @since 0.3.0
 * @category parsing
 */
export const toUrl = (address: string): URL | undefined => {
  const text = address.trim()
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text)
    ? text
    : `http://${text.startsWith(":") ? `127.0.0.1${text}` : text}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    return undefined
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined
  // "host" alone is a mistake (which port?), not the default port 80.
  if (!withScheme.startsWith(text) && url.port === "") return undefined
  if (!url.pathname.endsWith("/")) url.pathname = `${url.pathname}/`
  return url
}

const decode = Schema.decodeUnknownEffect(Snapshot)

/** How long a dashboard may take to answer before it counts as unreachable. */
const TIMEOUT_MILLIS = 5000

/**
 * Reads the snapshot of the dashboard at `address` (`/api/snapshot`).
 *
 * @since 0.3.0
 * @category reading
 */
export const fetchSnapshot = (address: string): Effect.Effect<Snapshot, DashboardError> =>
  Effect.gen(function* () {
    const base = toUrl(address)
    if (base === undefined) {
      return yield* new DashboardError({
        address,
        reason: "options",
        detail: "give host:port (e.g. 127.0.0.1:9400) or an http URL"
      })
    }
    const url = new URL("api/snapshot", base)
    const response = yield* Effect.tryPromise({
      try: (signal) => fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MILLIS)]) }),
      catch: (error) => new DashboardError({ address, reason: "unreachable", detail: causeOf(error) })
    })
    if (!response.ok) {
      return yield* new DashboardError({ address, reason: "response", detail: `HTTP ${response.status} from ${url}` })
    }
    const body = yield* Effect.tryPromise({
      try: () => response.json() as Promise<unknown>,
      catch: () => new DashboardError({ address, reason: "response", detail: `${url} did not answer JSON` })
    })
    return yield* decode(body).pipe(
      Effect.mapError(
        (error) => new DashboardError({ address, reason: "response", detail: `not a Snapshot: ${error.message}` })
      )
    )
  })

/** The reason under fetch's "fetch failed" (ECONNREFUSED, ENOTFOUND, a timeout). */
const causeOf = (error: unknown): string => {
  if (error instanceof Error) {
    if (error.name === "TimeoutError") return `no answer within ${TIMEOUT_MILLIS} ms`
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    if (cause?.code !== undefined) return `${cause.code}${cause.message ? ` (${cause.message})` : ""}`
    if (cause?.message !== undefined) return cause.message
    return error.message
  }
  return String(error)
}

/** Options of {@link render}. */
export interface RenderOptions {
  /** The snapshot before this one: adds a rate column (calls per second between the two). */
  readonly previous?: Snapshot | undefined
  /** How many recent events to list. */
  readonly events: number
  /** Colour the states with ANSI escapes. */
  readonly color: boolean
}

const ansi = {
  green: "\x1b[32m",
  yellow: "\x1b[33m",
  red: "\x1b[31m",
  dim: "\x1b[2m",
  bold: "\x1b[1m",
  reset: "\x1b[0m"
}

/**
 * A snapshot as text: a table of Workers (and their methods), a table of
 * Env slots, and the most recent events.
 *
 * @since 0.3.0
 * @category rendering
 */
export const render = (snapshot: Snapshot, options: RenderOptions): string => {
  const paint = (color: keyof typeof ansi, text: string) =>
    options.color ? `${ansi[color]}${text}${ansi.reset}` : text
  const before = options.previous === undefined ? undefined : callsByWorker(options.previous.corps, "")
  const seconds = options.previous === undefined ? 0 : (snapshot.at - options.previous.at) / 1000
  const lines: Array<string> = []
  const corpsList = flatten(snapshot.corps, "")
  const workers = corpsList.reduce((n, { corps }) => n + corps.workers.length, 0)
  const envs = corpsList.reduce((n, { corps }) => n + corps.envs.length, 0)
  lines.push(
    `${paint("bold", `corps ${snapshot.corps.name}`)}  ${new Date(snapshot.at).toISOString()}  ${workers} workers, ${envs} envs, ${snapshot.events.length} recent events`
  )
  const workerRows: Array<Array<string>> = [
    [
      "WORKER",
      "KIND",
      "ENV",
      "INST",
      "MAILBOX",
      "CALLS",
      ...(before === undefined ? [] : ["RATE/s"]),
      "INFLIGHT",
      "P50",
      "P90",
      "P99",
      "ERRORS"
    ]
  ]
  for (const { path, corps } of corpsList) {
    for (const worker of corps.workers) {
      const name = path === "" ? worker.name : `${path}/${worker.name}`
      const calls = sum(worker.methods.map((m) => m.calls))
      const rateCells =
        before === undefined
          ? []
          : [
              seconds > 0
                ? (Math.max(0, calls - (before.get(`${path}/${worker.name}`) ?? calls)) / seconds).toFixed(1)
                : "0.0"
            ]
      const worst = worker.methods.reduce((a, m) => (m.latencyMillis.p99 > a.p99 ? m.latencyMillis : a), {
        p50: 0,
        p90: 0,
        p99: 0,
        max: 0
      })
      workerRows.push([
        name,
        worker.kind,
        worker.env,
        String(worker.instances),
        String(worker.mailbox),
        String(calls),
        ...rateCells,
        String(sum(worker.methods.map((m) => m.inFlight))),
        millis(worst.p50),
        millis(worst.p90),
        millis(worst.p99),
        String(sum(worker.methods.map(failureCount)))
      ])
      for (const method of worker.methods) {
        if (method.calls === 0 && method.inFlight === 0) continue
        const failures = Object.entries(method.failures)
          .map(([tag, n]) => `${tag} ${n}`)
          .join(", ")
        workerRows.push([
          `  .${method.method}`,
          "",
          "",
          "",
          "",
          String(method.calls),
          ...(before === undefined ? [] : [""]),
          String(method.inFlight),
          millis(method.latencyMillis.p50),
          millis(method.latencyMillis.p90),
          millis(method.latencyMillis.p99),
          failures === "" ? "0" : failures
        ])
      }
    }
  }
  lines.push("", ...table(workerRows, 3))
  const slotRows: Array<Array<string>> = [
    ["ENV", "KIND", "SLOT", "STATE", "PID", "THREAD", "UTIL", "HEAP", "INFLIGHT", "RESTARTS", "LAST"]
  ]
  const states: Array<string> = []
  for (const { path, corps } of corpsList) {
    for (const env of corps.envs) {
      const name = path === "" ? env.name : `${path}/${env.name}`
      if (env.slots.length === 0) {
        slotRows.push([name, env.kind, "-", env.kind === "local" ? "serving" : "-", "", "", "", "", "", "", ""])
        states.push(env.kind === "local" ? "serving" : "")
      }
      for (const slot of env.slots) {
        slotRows.push([
          name,
          env.kind,
          String(slot.index),
          slot.state,
          slot.pid === undefined ? "-" : String(slot.pid),
          slot.threadId === undefined ? "-" : String(slot.threadId),
          slot.utilization === undefined ? "-" : `${Math.round(slot.utilization * 100)}%`,
          slot.heapUsed === undefined ? "-" : `${(slot.heapUsed / 1048576).toFixed(1)}MB`,
          String(slot.inFlight),
          String(slot.restarts),
          // A cluster runner says where it is while it serves.
          slot.reason ?? (slot.address === undefined ? "" : runnerWhere(slot.address, slot.host))
        ])
        states.push(slot.state)
      }
    }
  }
  // The STATE column is coloured after padding, so escapes do not break the alignment.
  const slotLines = table(slotRows, 3).map((line, i) => {
    const state = i === 0 ? undefined : states[i - 1]
    if (state === undefined || state === "" || !options.color) return line
    const color = state === "serving" ? "green" : state === "stopped" ? "red" : "yellow"
    return line.replace(new RegExp(`\\b${state}\\b`), paint(color, state))
  })
  lines.push("", ...slotLines)
  const recent = snapshot.events.slice(-options.events)
  lines.push("", paint("bold", "RECENT EVENTS"))
  if (recent.length === 0) lines.push(paint("dim", "  none"))
  for (const event of recent.toReversed()) {
    lines.push(`  ${new Date(event.at).toISOString().slice(11, 23)}  ${event._tag.padEnd(20)}  ${describe(event)}`)
  }
  return lines.join("\n")
}

const flatten = (corps: CorpsStats, prefix: string): Array<{ path: string; corps: CorpsStats }> => {
  // The top Corps' Workers go unprefixed; nested Corps are named by their path.
  const path = prefix === "" ? "" : prefix
  return [
    { path, corps },
    ...corps.children.flatMap((child) => flatten(child, path === "" ? child.name : `${path}/${child.name}`))
  ]
}

const callsByWorker = (corps: CorpsStats, prefix: string): Map<string, number> => {
  const calls = new Map<string, number>()
  for (const { path, corps: c } of flatten(corps, prefix)) {
    for (const worker of c.workers) calls.set(`${path}/${worker.name}`, sum(worker.methods.map((m) => m.calls)))
  }
  return calls
}

const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)
const failureCount = (method: { readonly failures: Readonly<Record<string, number>> }) =>
  sum(Object.values(method.failures))

const millis = (value: number): string =>
  value === 0
    ? "-"
    : value >= 1000
      ? `${(value / 1000).toFixed(2)}s`
      : value >= 1
        ? `${value.toFixed(1)}ms`
        : `${Math.round(value * 1000)}µs`

/** Left-aligned columns separated by `gap` spaces. */
const table = (rows: ReadonlyArray<ReadonlyArray<string>>, gap: number): Array<string> => {
  const widths: Array<number> = []
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length)
    })
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + gap)))
      .join("")
      .trimEnd()
  )
}

const describe = (event: CorpsEvent): string => {
  switch (event._tag) {
    case "EnvStarted":
      return `${event.env}#${event.index}${event.attempt > 0 ? ` restarted (attempt ${event.attempt})` : " started"}`
    case "SpareReady":
      return `spare of ${event.env} ready`
    case "EnvCrashed":
      return `${event.env}#${event.index} ${event.reason}: ${event.detail}`
    case "EnvRestarting":
      return `${event.env}#${event.index} restarts in ${event.delayMillis} ms`
    case "SupervisionExhausted":
      return `${event.worker ?? event.env} gave up (${event.outcome}): ${event.detail}`
    case "CallRedelivered":
      return `${event.worker}.${event.method} sent again (attempt ${event.attempt})`
    case "CallQuarantined":
      return `${event.worker}.${event.method} quarantined after ${event.crashes} crashes`
    case "InstanceRestarted":
      return `${event.worker}[${event.key}] rebuilt`
    default:
      // Kinds added later (scaling, passivation…) still show, with their fields.
      return Object.entries(event as Record<string, unknown>)
        .filter(([field]) => field !== "_tag" && field !== "corps" && field !== "at")
        .map(([field, value]) => `${field}=${typeof value === "object" ? JSON.stringify(value) : String(value)}`)
        .join(" ")
  }
}

const runnerWhere = (address: string, host: string | undefined): string =>
  host === undefined ? address : `${address} on ${host}`

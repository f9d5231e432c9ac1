/**
 * Whether the tests that need PostgreSQL run: probed once per `vitest run`
 * (a global setup), then read by the test files through `inject("postgres")`.
 *
 * Without PostgreSQL those tests are skipped with one line saying why, except
 * under CI, where a missing database must fail the run rather than let the
 * cluster go untested.
 */
import * as Net from "node:net"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    /** PostgreSQL is reachable at `databaseUrl`: the cluster tests run. */
    readonly postgres: boolean
  }
}

/** The database of the cluster tests (the harness's runners and clients use it too). */
export const databaseUrl = process.env.CORPS_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** What to do about the PostgreSQL tests. */
export type Verdict =
  | { readonly _tag: "Run" }
  | { readonly _tag: "Skip"; readonly line: string }
  | { readonly _tag: "Fail"; readonly line: string }

/** A URL without its password, fit for a log line. */
export const displayUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.href
  } catch {
    return "(an unparsable URL)"
  }
}

/** Decides from whether the database answered and whether this is a CI run. */
export const verdict = (options: {
  readonly reachable: boolean
  readonly ci: boolean
  readonly url: string
  readonly why?: string | undefined
}): Verdict => {
  if (options.reachable) return { _tag: "Run" }
  const where = `PostgreSQL not reachable at ${displayUrl(options.url)}${options.why === undefined ? "" : ` (${options.why})`}`
  return options.ci
    ? {
        _tag: "Fail",
        line: `${where}: CI=true needs it for the cluster tests; start PostgreSQL or set CORPS_DATABASE_URL`
      }
    : { _tag: "Skip", line: `${where}: cluster tests skipped; start PostgreSQL or set CORPS_DATABASE_URL` }
}

/** `CI=true` (or `1`), as CI services set it. */
export const isCi = (value: string | undefined): boolean => value === "true" || value === "1"

/** Opens a TCP connection to the database's host and port; resolves with the failure, if any. */
export const probe = (url: string, timeoutMs = 2_000): Promise<string | undefined> =>
  new Promise((resolve) => {
    let target: URL
    try {
      target = new URL(url)
    } catch {
      return resolve("CORPS_DATABASE_URL is not a URL")
    }
    const socket = Net.createConnection({
      host: target.hostname.replace(/^\[|\]$/g, "") || "localhost",
      port: Number(target.port || 5432)
    })
    const done = (why: string | undefined) => {
      socket.destroy()
      resolve(why)
    }
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`))
    socket.once("connect", () => done(undefined))
    socket.once("error", (error: NodeJS.ErrnoException) => done(error.code ?? error.message))
  })

/** Vitest global setup: probes once, prints the verdict's line, provides `postgres`. */
export default async function setup(project: TestProject): Promise<void> {
  const why = await probe(databaseUrl)
  const decided = verdict({ reachable: why === undefined, ci: isCi(process.env.CI), url: databaseUrl, why })
  if (decided._tag === "Fail") throw new Error(decided.line)
  if (decided._tag === "Skip") console.warn(decided.line)
  project.provide("postgres", decided._tag === "Run")
}

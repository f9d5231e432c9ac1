/**
 * ExtCorps: call throughput from this program to a Worker another program
 * serves (`Corps.connect` → `Corps.serve`, loopback TCP), 64 calls in
 * flight, against the same Worker in a `host` Env (one process started by a
 * loopback `corps host` daemon), measured side by side in the same run.
 *
 * Run alone with `npx node bench/external.bench.ts`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Layer, ManagedRuntime } from "effect"
import { HostEnv } from "../src/host/index.ts"
import { Corps } from "../src/index.ts"
import { Inc, IncLive } from "./external/workers.ts"
import { throughputSideBySide } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const SECRET = "bench-secret"
const IN_FLIGHT = 64
const OPS = 20_000

/** Starts `node file args` and resolves with the first match of `ready` in its stdout. */
const startChild = (args: ReadonlyArray<string>, ready: RegExp, env: Record<string, string>) =>
  new Promise<{ child: ChildProcess; address: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const match = ready.exec(out)
      if (match !== null) resolve({ child, address: match[1]! })
    })
    child.once("exit", (code) => reject(new Error(`${args[0]} exited with ${code}: ${out}`)))
  })

const round = (rt: ManagedRuntime.ManagedRuntime<Inc, unknown>) => (ops: number) =>
  rt.runPromise(
    Effect.gen(function* () {
      const inc = yield* Inc
      yield* Effect.forEach(
        Array.from({ length: ops }, (_, i) => i),
        (n) => inc.inc({ n }),
        { concurrency: IN_FLIGHT, discard: true }
      )
    })
  )

/** Cross-program calls against host-Env calls, 64 in flight. */
export const runExternal = async (): Promise<void> => {
  section(`ExtCorps: cross-program calls vs host Env, ${IN_FLIGHT} in flight, loopback`)
  const served = await startChild([fileURLToPath(new URL("./external/served.ts", import.meta.url))], /ready (\S+)\n/, {
    SECRET
  })
  const daemon = await startChild(
    [
      fileURLToPath(new URL("../src/cli/main.ts", import.meta.url)),
      "host",
      "--listen",
      "127.0.0.1:0",
      "--cache-dir",
      mkdtempSync(join(tmpdir(), "corps-bench-cache-"))
    ],
    /corps-host ready (\S+)/,
    { CORPS_HOST_SECRET: SECRET }
  )
  process.env.CORPS_HOST_SECRET = SECRET
  const external = ManagedRuntime.make(Corps.connect([Inc], { address: served.address, secret: SECRET }))
  const host = ManagedRuntime.make(
    Corps.layer([IncLive], {
      module: new URL("./external/workers.ts", import.meta.url).href,
      placement: { envs: { far: { kind: "host", hosts: [daemon.address], count: 1 } }, default: "far" }
    }).pipe(Layer.provide(HostEnv.layer)) as Layer.Layer<Inc, unknown>
  )
  try {
    const rates = await throughputSideBySide(
      { external: round(external as never), host: round(host as never) },
      { ops: OPS, rounds: 5, warmup: 2 }
    )
    figure("external_call_64_per_s", rates.external!, "calls/s (Corps.connect → Corps.serve)")
    figure("external_host_env_call_64_per_s", rates.host!, "calls/s (host Env, same Worker)")
    ratio("external_vs_host_env_ratio", rates.external!, rates.host!)
  } finally {
    await external.dispose()
    await host.dispose()
    served.child.kill("SIGKILL")
    daemon.child.kill("SIGKILL")
  }
}

if (import.meta.main) {
  setTimeout(() => process.exit(2), 300_000).unref()
  await runExternal()
  printJson()
  process.exit(0)
}

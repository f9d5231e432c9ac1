/**
 * effect-corps on effect/cluster against effect/cluster itself: entity calls
 * per second through `src/cluster` (a Worker's handle Target) and through a
 * hand-written Entity client, to the same runners and the same PostgreSQL
 * storage; then the failover time after SIGKILL of a runner (p50 and max over
 * 10 kills), with the `fast` timings (lock refresh 1 s, expiry 3 s, health
 * check 1 s, assignments 0.5 s).
 *
 * Run alone with `npx node bench/cluster.bench.ts` (PostgreSQL at
 * CORPS_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { TestRunner } from "effect/cluster"
import type { SqlClient as SqlClientService } from "effect/sql"
import { SqlClient } from "effect/sql"
import * as Cluster from "../src/cluster/Cluster.ts"
import { layerEntity, makeTargets } from "../src/cluster/internal/Entities.ts"
import { BenchCounter, BenchCounterLive, BenchEcho, BenchEchoLive, Direct, DirectLive } from "./cluster-runner.ts"
import { median } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const IN_FLIGHT = 64
const KEYS = 64
/** SIGKILLs of the failover measurement (p50 and max reported). */
const KILLS = Number(process.env.CORPS_BENCH_KILLS ?? 10)
const databaseUrl = process.env.CORPS_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const secret = "bench-secret-0123456789abcdef"
const entry = fileURLToPath(new URL("./cluster-runner.ts", import.meta.url))

interface Spawned {
  readonly child: ChildProcess
  readonly pid: number
  readonly exited: Promise<void>
}

const startRunner = (prefix: string, port: number): Promise<Spawned> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, "--address", `127.0.0.1:${port}`], {
      env: {
        ...process.env,
        CORPS_DATABASE_URL: databaseUrl,
        CORPS_CLUSTER_SECRET: secret,
        CORPS_CLUSTER_PREFIX: prefix,
        CORPS_CLUSTER_FAILOVER: "fast"
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    const timer = setTimeout(() => reject(new Error(`runner ${port} did not start:\n${out}`)), 30_000)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes("corps-runner ready")) {
        clearTimeout(timer)
        resolve({ child, pid: child.pid!, exited })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code) => reject(new Error(`runner ${port} exited (${code}):\n${out}`)))
  })

/** SIGKILL: benchmarks must not wait on a child's shutdown (Node 24 may hang in exit). */
const kill = async (runner: Spawned): Promise<void> => {
  if (runner.child.exitCode === null && runner.child.signalCode === null) runner.child.kill("SIGKILL")
  await Promise.race([runner.exited, new Promise((r) => setTimeout(r, 3_000))])
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs `ops` calls, `IN_FLIGHT` at a time, spread over `KEYS` entities. */
const load = (call: (key: number, i: number) => Effect.Effect<unknown, unknown>, ops: number) =>
  Effect.forEach(
    Array.from({ length: ops }, (_, i) => i),
    (i) => call(i % KEYS, i),
    {
      concurrency: IN_FLIGHT,
      discard: true
    }
  )

/**
 * Interleaved measurement with the order alternated every round (ABBA…):
 * on this machine whichever path runs first in a round is ~20% slower
 * (runner-side warm-up after the other path's burst), which a fixed order
 * would charge to one side only.
 */
const sideBySide = async (
  rounds: { readonly corps: () => Promise<void>; readonly direct: () => Promise<void> },
  ops: number,
  count: number
): Promise<{ corps: number; direct: number; ratio: number }> => {
  const rates = { corps: [] as Array<number>, direct: [] as Array<number> }
  const ratios: Array<number> = []
  await rounds.corps()
  await rounds.direct()
  for (let i = 0; i < count; i++) {
    const order: Array<"corps" | "direct"> = i % 2 === 0 ? ["corps", "direct"] : ["direct", "corps"]
    for (const name of order) {
      const start = performance.now()
      await rounds[name]()
      rates[name].push(ops / ((performance.now() - start) / 1000))
    }
    ratios.push(rates.corps[i]! / rates.direct[i]!)
  }
  // The ratio is the median of per-round ratios: each pair ran back to back, under the same load.
  return { corps: median(rates.corps), direct: median(rates.direct), ratio: median(ratios) }
}

/**
 * The same comparison on effect/cluster's in-memory TestRunner (one process,
 * messages still serialized): no network, no PostgreSQL, so the figure is the
 * overhead of the effect-corps path itself, with far less noise.
 */
const runInMemory = async (): Promise<void> => {
  section("cluster (in memory, TestRunner): effect-corps path vs effect/cluster directly, 64 in flight")
  const ops = 10_000
  const layer = Layer.mergeAll(layerEntity(BenchCounterLive), layerEntity(BenchEchoLive), DirectLive).pipe(
    Layer.provideMerge(TestRunner.layer)
  )
  const runtime = ManagedRuntime.make(layer)
  try {
    const corps = await runtime.runPromise(makeTargets(BenchCounter, "conc"))
    const direct = await runtime.runPromise(Direct.client)
    const corpsTargets = Array.from({ length: KEYS }, (_, k) => corps(`k${k}`))
    const directClients = Array.from({ length: KEYS }, (_, k) => direct(`k${k}`))
    const rates = await sideBySide(
      {
        corps: () => runtime.runPromise(load((k, i) => corpsTargets[k]!.call("add", { n: i }), ops)),
        direct: () => runtime.runPromise(load((k, i) => directClients[k]!.add({ n: i }), ops))
      },
      ops,
      8
    )
    figure("cluster.memory.corps.callsPerSecond", rates.corps, "calls/s")
    figure("cluster.memory.direct.callsPerSecond", rates.direct, "calls/s")
    ratio("cluster.memory.corpsVsDirect", rates.ratio, 1, "≥ 0.9")
    // A Func through its slots, against the Conc entity path above.
    const echo = (await runtime.runPromise(makeTargets(BenchEcho, "func")))("default")
    const func = await sideBySide(
      {
        corps: () => runtime.runPromise(load((_, i) => echo.call("echo", { n: i }), ops)),
        direct: () => runtime.runPromise(load((k, i) => corpsTargets[k]!.call("add", { n: i }), ops))
      },
      ops,
      6
    )
    figure("cluster.memory.func.callsPerSecond", func.corps, "calls/s")
    ratio("cluster.memory.funcVsConc", func.ratio, 1)
  } finally {
    await Promise.race([runtime.dispose(), sleep(5_000)])
  }
}

export const runCluster = async (): Promise<void> => {
  await runInMemory()
  section("cluster: effect-corps entities vs effect/cluster directly (2 runners, PostgreSQL, 64 in flight)")
  const prefix = `corps_b${Date.now().toString(36)}`
  // Timings from the environment (CORPS_SHARD_LOCK_EXPIRATION…) reach the runners too: to compare presets.
  const settings: Cluster.Settings = {
    ...(await Effect.runPromise(Cluster.settingsFromEnv)),
    databaseUrl: Redacted.make(databaseUrl),
    secret: Redacted.make(secret),
    prefix,
    failover: "fast"
  }
  const base = 46_000 + Math.floor(Math.random() * 10_000)
  const runners: Array<Spawned> = []
  const client = ManagedRuntime.make(Cluster.layerSql({ settings }))
  const run = <A>(effect: Effect.Effect<A, unknown, Cluster.Services | SqlClientService.SqlClient>) =>
    client.runPromise(effect)
  try {
    // The client first: it creates the settings row the runners then agree with.
    await run(Effect.void)
    runners.push(...(await Promise.all([startRunner(prefix, base), startRunner(prefix, base + 1)])))
    const corps = await run(makeTargets(BenchCounter, "conc"))
    const direct = await run(Direct.client)
    const corpsTargets = Array.from({ length: KEYS }, (_, k) => corps(`k${k}`))
    const directClients = Array.from({ length: KEYS }, (_, k) => direct(`k${k}`))

    // Wait until entities answer from every runner (assignment follows each join).
    const spread = async (pids: ReadonlyArray<number>) => {
      const start = Date.now()
      for (;;) {
        const seen = await run(Effect.forEach(corpsTargets, (t) => t.call("where", undefined), { concurrency: 16 }))
        if (pids.every((p) => seen.includes(p))) return
        if (Date.now() - start > 20_000) throw new Error("shards were never spread over both runners")
        await sleep(250)
      }
    }
    await spread(runners.map((r) => r.pid))

    const volatile = await sideBySide(
      {
        corps: () => run(load((k, i) => corpsTargets[k]!.call("add", { n: i }), 1_000)),
        direct: () => run(load((k, i) => directClients[k]!.add({ n: i }), 1_000))
      },
      1_000,
      16
    )
    figure("cluster.volatile.corps.callsPerSecond", volatile.corps, "calls/s")
    const echo = (await run(makeTargets(BenchEcho, "func")))("default")
    const func = await sideBySide(
      {
        corps: () => run(load((_, i) => echo.call("echo", { n: i }), 2_000)),
        direct: () => run(load((k, i) => corpsTargets[k]!.call("add", { n: i }), 2_000))
      },
      2_000,
      4
    )
    figure("cluster.volatile.func.callsPerSecond", func.corps, "calls/s")
    figure("cluster.volatile.direct.callsPerSecond", volatile.direct, "calls/s")
    ratio("cluster.volatile.corpsVsDirect", volatile.ratio, 1, "≥ 0.9")

    const persisted = await sideBySide(
      {
        corps: () => run(load((k, i) => corpsTargets[k]!.call("addPersisted", { n: i }), 300)),
        direct: () => run(load((k, i) => directClients[k]!.addPersisted({ n: i }), 300))
      },
      300,
      4
    )
    figure("cluster.persisted.corps.callsPerSecond", persisted.corps, "calls/s")
    figure("cluster.persisted.direct.callsPerSecond", persisted.direct, "calls/s")
    ratio("cluster.persisted.corpsVsDirect", persisted.ratio, 1, "≥ 0.9")

    // Failover: kill a runner, time until every entity answers again (`where` is persisted:
    // calls to the dead runner's entities wait for the new home), start a replacement, wait
    // for it to hold shards, and again. The two runners are killed in turn, so kills hit the
    // holder of the health-check singleton and the other alike (they detect the loss differently).
    const failovers: Array<number> = []
    for (let k = 0; k < KILLS; k++) {
      const slot = k % 2
      const victim = runners[slot]!
      const killedAt = performance.now()
      victim.child.kill("SIGKILL")
      const after = await run(
        Effect.forEach(corpsTargets, (t) => t.call("where", undefined), { concurrency: KEYS }).pipe(
          Effect.timeout("60 seconds")
        )
      )
      failovers.push((performance.now() - killedAt) / 1000)
      if (after.includes(victim.pid)) throw new Error("an entity still answered from the killed runner")
      await kill(victim)
      if (k === KILLS - 1) break
      runners[slot] = await startRunner(prefix, base + 2 + k)
      await spread(runners.map((r) => r.pid))
    }
    figure("cluster.failover.seconds", median(failovers), "s  (p50; target ≤ 6)")
    figure("cluster.failover.p50Seconds", median(failovers), "s  (target ≤ 6)")
    figure("cluster.failover.maxSeconds", Math.max(...failovers), "s  (target ≤ 6)")
    figure("cluster.failover.kills", failovers.length, "SIGKILLs")
    console.log(`  (each: ${failovers.map((s) => s.toFixed(2)).join(", ")} s)`)
  } finally {
    await Promise.all(runners.map(kill))
    await run(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const tables = yield* sql<{
          tablename: string
        }>`SELECT tablename FROM pg_tables WHERE tablename LIKE ${`${prefix}%`}`
        for (const { tablename } of tables) yield* sql`DROP TABLE IF EXISTS ${sql(tablename)} CASCADE`
      })
    ).catch(() => {})
    await Promise.race([client.dispose(), sleep(5_000)])
  }
}

if (import.meta.main) {
  setTimeout(() => process.exit(2), 300_000).unref()
  await runCluster()
  printJson()
  process.exit(0)
}

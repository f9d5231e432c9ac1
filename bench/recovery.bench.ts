/**
 * Recovery: from a crash to the first successful call on the replacement, for
 * a Func placed in a 1-count thread Env (the Env's thread calls
 * `process.exit`) and in a 1-count process Env (SIGKILL from outside), p50
 * and max over 20 crashes each; beside it, effect's own worker pool
 * (`RpcClient.layerProtocolWorker` + `NodeWorker`) after its worker exits.
 *
 * After each crash the caller calls again as soon as a call fails (1 ms
 * apart, so a fast-failing call does not spin), until one is answered by a
 * thread or process other than the crashed one: the time includes noticing
 * the crash and putting the replacement in its place (the warm spare, or a
 * fresh start importing the module). The Env's policy has no backoff and no
 * intensity limit, so each of the back-to-back crashes measures that
 * machinery; a policy's backoff adds its own delay on top, by design.
 *
 * Run alone with `npx node bench/recovery.bench.ts`.
 */
import { Worker as NodeThread } from "node:worker_threads"
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import { Context, Effect, Exit, Layer, ManagedRuntime, Queue, References, Scope, Stream } from "effect"
import { RpcClient } from "effect/rpc"
import { Corps } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"
import { median } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"
import { Group, ROLE } from "./recovery/effectWorker.ts"
import { Crashy, CrashyLive } from "./recovery/workers.ts"

const CRASHES = Number(process.env.CORPS_BENCH_CRASHES ?? 20)
/** A replacement that has not answered after this long counts as never recovering: the bench fails. */
const GIVE_UP_MS = 30_000
const TARGET_MS = { thread: 100, process: 500 } as const

const module = new URL("./recovery/workers.ts", import.meta.url).href
const effectWorkerEntry = new URL("./recovery/effectWorker.ts", import.meta.url)

/**
 * Calls `who` until a thread or process other than `crashed` answers; the
 * milliseconds since `since`, and who answered.
 */
const untilReplaced = <E>(
  who: Effect.Effect<string, E>,
  crashed: string,
  since: number
): Effect.Effect<{ readonly ms: number; readonly who: string }> =>
  Effect.gen(function* () {
    for (;;) {
      const exit = yield* Effect.exit(who)
      if (Exit.isSuccess(exit) && exit.value !== crashed) return { ms: performance.now() - since, who: exit.value }
      if (performance.now() - since > GIVE_UP_MS) {
        return yield* Effect.die(new Error(`no replacement answered ${GIVE_UP_MS} ms after the crash of ${crashed}`))
      }
      yield* Effect.sleep("1 millis")
    }
  })

/** effect-corps: `Crashy` alone in a 1-count Env of `kind`, crashed `crashes` times. */
const corpsRecovery = async (kind: "thread" | "process", crashes: number): Promise<Array<number>> => {
  const runtime = ManagedRuntime.make(
    Corps.layer([CrashyLive], {
      module,
      placement: {
        envs: {
          one: {
            kind,
            count: 1,
            // The machinery, not a policy: no backoff between these back-to-back crashes (the default
            // policy restarts at once only after 10 quiet seconds, then waits 100 ms doubling), and no
            // intensity limit (the default gives up after 10 restarts within 10 s).
            supervision: { backoff: { baseMillis: 0, capMillis: 0 }, maxRestarts: 1000, withinMillis: 1000 }
          }
        },
        default: "one"
      }
    }).pipe(
      Layer.provide(NodeEnv.layer),
      // Each crash is logged by the Corps: the figures are what this bench prints.
      Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error"))
    )
  )
  try {
    return await runtime.runPromise(
      Effect.gen(function* () {
        const crashy = yield* Crashy
        const who = crashy.who() as Effect.Effect<string, unknown>
        // Each crash waits until a warm spare is ready (the SpareReady event): the figure
        // is a crash's recovery when the pool is ready for it, not a pile-up of back-to-back crashes.
        const spares = yield* Queue.unbounded<void>()
        yield* Effect.forkChild(
          Corps.events.pipe(
            Stream.filter((event) => event._tag === "SpareReady"),
            Stream.runForEach(() => Queue.offer(spares, undefined))
          ),
          { startImmediately: true }
        )
        let current = yield* who
        const samples: Array<number> = []
        for (let i = 0; i < crashes; i++) {
          yield* Queue.take(spares).pipe(
            Effect.timeoutOrElse({
              // The first spare may have reported ready before the subscription began.
              duration: i === 0 ? 5_000 : GIVE_UP_MS,
              orElse: () =>
                i === 0
                  ? Effect.void
                  : Effect.die(new Error(`no spare was ready ${GIVE_UP_MS} ms after the last recovery`))
            })
          )
          const since = performance.now()
          if (kind === "thread") yield* Effect.exit(crashy.exit())
          else process.kill(Number(current.split("/")[0]), "SIGKILL")
          const replaced = yield* untilReplaced(who, current, since)
          samples.push(replaced.ms)
          current = replaced.who
        }
        return samples
      }).pipe(Effect.provideService(References.MinimumLogLevel, "Error"))
    )
  } finally {
    await runtime.dispose()
  }
}

/** effect's worker pool (size 1): the worker exits, the pool spawns another on its own. */
const effectPoolRecovery = async (crashes: number): Promise<Array<number>> => {
  const scope = Scope.makeUnsafe()
  try {
    const context = await Effect.runPromise(
      Layer.buildWithScope(
        RpcClient.layerProtocolWorker({ size: 1 }).pipe(
          Layer.provide(NodeWorker.layer(() => new NodeThread(effectWorkerEntry, { workerData: { role: ROLE } }))),
          Layer.orDie
        ),
        scope
      )
    )
    return await Effect.runPromise(
      Effect.gen(function* () {
        const client = yield* RpcClient.make(Group, { disableTracing: true })
        const who = Effect.map(client.Who(), String)
        let current = yield* who
        const samples: Array<number> = []
        for (let i = 0; i < crashes; i++) {
          const since = performance.now()
          yield* Effect.exit(client.Exit())
          const replaced = yield* untilReplaced(who, current, since)
          samples.push(replaced.ms)
          current = replaced.who
        }
        return samples
      }).pipe(Effect.provideContext(Context.add(context, Scope.Scope, scope)))
    )
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export const runRecovery = async (): Promise<void> => {
  section(`recovery: crash → first successful call on the replacement (1-count Env, ${CRASHES} crashes, ms)`)
  const p50s: Record<string, number> = {}
  for (const kind of ["thread", "process"] as const) {
    const samples = await corpsRecovery(kind, CRASHES)
    p50s[kind] = median(samples)
    figure(`recovery.${kind}.p50Ms`, p50s[kind], `ms  (target ≤ ${TARGET_MS[kind]})`)
    figure(`recovery.${kind}.maxMs`, Math.max(...samples), "ms")
  }
  const effect = await effectPoolRecovery(CRASHES)
  const effectP50 = median(effect)
  figure("recovery.effectWorkerPool.p50Ms", effectP50, "ms  (effect's RpcClient.layerProtocolWorker, a thread)")
  figure("recovery.effectWorkerPool.maxMs", Math.max(...effect), "ms")
  // Below 1: effect-corps' thread Env is back sooner than effect's worker pool.
  ratio("recovery.thread.vsEffectWorkerPool", p50s.thread!, effectP50)
}

if (import.meta.main) {
  setTimeout(() => process.exit(2), 300_000).unref()
  await runRecovery()
  printJson()
  process.exit(0)
}

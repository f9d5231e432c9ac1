/**
 * Chaos: 10,000 calls while the Envs serving them are taken down one after
 * another, every 200 ms, in threads and in processes. Idempotent calls must
 * all succeed (re-delivered), the others may fail only with `CallLost`, no
 * call may hang, and closing the Corps must leave nothing running.
 *
 * Each way of taking an Env down is one entry of `takeDowns`, and each run
 * one line of `runs`: SIGKILL of a child process, `process.exit` inside a
 * thread, a blocked event loop (found by the pool's heartbeats), and memory
 * exhaustion under a small limit. An Env is only taken down once it answers,
 * so each kill hits a serving Env. With PostgreSQL, some of the idempotent
 * calls go to a Conc whose state persists there (the Ledger): it must end
 * exact, holding every id sent to it once.
 */
import { PgClient } from "@effect/sql-pg"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Redacted, References, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import type { CorpsEvent } from "../../src/CorpsEvent.ts"
import { Corps, type Placement } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { hostFor } from "../../src/node/routing.ts"
import { databaseUrl } from "../cluster/postgres.ts"
import { Job, JobLive, LEDGER_TABLE, Ledger, LedgerLive, Tally, TallyLive } from "../fixtures/chaos.ts"
import { childPids, threadResources } from "./resources.ts"

const fixtures = new URL("../fixtures/chaos.ts", import.meta.url).href

const CALLS = 10_000
/** Calls in flight at once. */
const LANES = 256
/** Envs in the pool: an Env is taken down every `KILL_EVERY`, in turn. */
const COUNT = 3
const KILL_EVERY = "200 millis"
/** Envs taken down while the calls run: call `i` is made after the `i / (CALLS / KILLS)`th. */
const KILLS = 20
/** Conc keys the calls spread over. */
const KEYS = 24
/** Generous: a call that hangs fails the test instead of the suite's timeout. */
const BOUND = "150 seconds"

type Kind = "thread" | "process"

/** A key of Tally whose instance lives in slot `index`. */
const keyIn = (index: number): string => {
  const hosts = Array.from({ length: COUNT }, (_, i) => i)
  for (let i = 0; ; i++) if (hostFor(`chaos-${i}`, hosts) === index) return `chaos-${i}`
}

/** Takes the Env of slot `index` down with a call, once it answers; waits until the call is lost with it. */
const byCall = (index: number, call: (tally: Tally["Service"]) => Effect.Effect<void, unknown>) =>
  Effect.gen(function* () {
    const tally = yield* Tally
    const instance = tally.instance(keyIn(index))
    const up = yield* Effect.exit(instance.where())
    if (Exit.isFailure(up)) return false
    yield* Effect.exit(call(instance as Tally["Service"]))
    return true
  })

/**
 * Ways of taking the Env of slot `index` down, once it answers. Each returns
 * whether it found the Env up (a slot still restarting is skipped).
 */
const takeDowns = {
  /** SIGKILL of the child process. */
  sigkill: (index: number) =>
    Effect.gen(function* () {
      const tally = yield* Tally
      const place = yield* Effect.exit(tally.instance(keyIn(index)).where())
      if (Exit.isFailure(place)) return false
      process.kill(place.value.pid, "SIGKILL")
      return true
    }),
  /** `process.exit` inside the Env, run by a call (for a thread: the thread exits). */
  exit: (index: number) =>
    Effect.gen(function* () {
      const tally = yield* Tally
      const up = yield* Effect.exit(tally.instance(keyIn(index)).where())
      if (Exit.isFailure(up)) return false
      yield* Effect.exit(tally.instance(keyIn(index)).exit())
      return true
    }),
  /** A busy loop inside the Env: its heartbeats go unanswered, and the pool kills it (reason `hang`). */
  hang: (index: number) => byCall(index, (tally) => tally.block()),
  /** Allocation without end inside the Env, under a small heap limit (reason `memory`). */
  memory: (index: number) => byCall(index, (tally) => tally.hog())
} satisfies Record<string, (index: number) => Effect.Effect<boolean, never, Tally>>

const runs: ReadonlyArray<readonly [Kind, keyof typeof takeDowns]> = [
  ["thread", "exit"],
  ["process", "sigkill"],
  ["thread", "hang"],
  ["process", "hang"],
  ["thread", "memory"],
  ["process", "memory"]
]

/** Health settings that let the pool see a hang or an exhausted heap quickly. */
const health = { hangTimeoutMillis: 300, resourceLimits: { maxOldGenerationSizeMb: 48 }, maxOldSpaceSizeMb: 48 }

const corps = (kind: Kind, way: keyof typeof takeDowns) =>
  Corps.layer([JobLive, TallyLive, LedgerLive], {
    module: fixtures,
    placement: {
      envs: {
        pool: {
          kind,
          count: COUNT,
          ...(way === "hang" ? { hangTimeoutMillis: health.hangTimeoutMillis } : {}),
          ...(way === "memory"
            ? kind === "thread"
              ? { resourceLimits: health.resourceLimits }
              : { maxOldSpaceSizeMb: health.maxOldSpaceSizeMb }
            : {}),
          // Twenty deliberate kills in a few seconds: more than the default policy's limit (which would
          // rightly give up on such an Env); restarts must keep up with them, so the backoff stays short.
          supervision: { maxRestarts: 1000, withinMillis: 60_000, backoff: { baseMillis: 10, capMillis: 200 } }
        }
      },
      default: "pool"
    } satisfies Placement.Placement
  }).pipe(Layer.provide(NodeEnv.layer))

/** PostgreSQL answered the suite's probe: the persisted Ledger takes part (its state lives there). */
const withLedger: boolean = inject("postgres")

/** The Ledger instance of call `i` in one run (a run id keeps runs apart in the table). */
const ledgerKey = (run: string, i: number) => `${run}-${i % KEYS}`

/** The outcome of one call: its value, or the tag of the error it failed with. */
type Outcome = { readonly ok: true; readonly value: number } | { readonly ok: false; readonly tag: string }

/** Call `i` of the mix: an idempotent Func call, an idempotent Conc call, or a call of a method that is not. */
const callOf = (job: Job["Service"], tally: Tally["Service"], ledger: Ledger["Service"], run: string, i: number) => {
  const key = `chaos-${i % KEYS}`
  switch (i % 4) {
    case 0:
      return { idempotent: true, expected: i * i, call: job.square({ n: i }) }
    case 1:
      // Held a little, so that Func calls are in flight when an Env goes down.
      return { idempotent: true, expected: i * i, call: job.slow({ n: i, millis: i % 3 }) }
    case 2:
      // Half of these go to the Ledger, whose state persists in PostgreSQL (when the database answers).
      return i % 8 === 6 && withLedger
        ? { idempotent: true, expected: i, call: ledger.instance(ledgerKey(run, i)).add({ id: i }) }
        : { idempotent: true, expected: i, call: tally.instance(key).echo({ n: i }) }
    default:
      return {
        idempotent: false,
        expected: i,
        call: i % 8 === 3 ? tally.instance(key).once({ n: i }) : Effect.map(job.once({ n: i }), Math.sqrt)
      }
  }
}

afterAll(async () => {
  if (!withLedger) return
  await Effect.runPromise(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`DROP TABLE IF EXISTS ${sql(LEDGER_TABLE)}`
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(databaseUrl) })), Effect.orDie)
  )
})

describe("chaos", () => {
  for (const [kind, way] of runs) {
    it.live(
      `${kind}: ${CALLS} calls while an Env is taken down (${way}) every ${KILL_EVERY}`,
      () =>
        Effect.gen(function* () {
          const threadsBefore = threadResources()
          const childrenBefore = childPids()
          const { outcomes, kills, events, calls, ledgers } = yield* Effect.scoped(
            Effect.gen(function* () {
              const job = yield* Job
              const tally = yield* Tally
              const ledger = yield* Ledger
              const run = `${kind}-${way}-${Date.now().toString(36)}`
              const events: Array<CorpsEvent> = []
              const watcher = yield* Effect.forkChild(
                Corps.events.pipe(Stream.runForEach((event) => Effect.sync(() => events.push(event)))),
                { startImmediately: true }
              )
              // The calls are spread over the kills, so that every kill finds calls in flight.
              const killed = yield* Effect.forEach(Array.from({ length: KILLS }), () => Deferred.make<void>())
              let kills = 0
              let turn = 0
              const killer = yield* Effect.forkChild(
                Effect.whileLoop({
                  while: () => kills < KILLS,
                  body: () =>
                    Effect.gen(function* () {
                      yield* Effect.sleep(KILL_EVERY)
                      if (!(yield* takeDowns[way](turn++ % COUNT))) return
                      yield* Deferred.succeed(killed[kills]!, undefined)
                      kills++
                    }),
                  step: () => {}
                })
              )
              const outcomes = new Array<Outcome>(CALLS)
              const calls = Array.from({ length: CALLS }, (_, i) => callOf(job, tally, ledger, run, i))
              let next = 0
              const lane = Effect.gen(function* () {
                while (next < CALLS) {
                  const i = next++
                  const after = Math.floor(i / (CALLS / KILLS)) - 1
                  if (after >= 0) yield* Deferred.await(killed[after]!)
                  const exit = yield* Effect.exit(calls[i]!.call)
                  outcomes[i] = Exit.isSuccess(exit)
                    ? { ok: true, value: exit.value }
                    : { ok: false, tag: errorTag(exit) }
                }
              })
              yield* Effect.all(
                Array.from({ length: LANES }, () => lane),
                { concurrency: "unbounded", discard: true }
              )
              // Every take-down happens, even those that come after the last call has ended.
              yield* Fiber.join(killer)
              // The persisted Ledger ends exact: each instance holds every id sent to it, once.
              const ledgers: Record<string, number> = {}
              if (withLedger) {
                for (let k = 0; k < KEYS; k++) {
                  const sent = calls.filter((_, i) => i % 8 === 6 && i % KEYS === k).length
                  if (sent === 0) continue
                  const held = yield* ledger.instance(ledgerKey(run, k)).count()
                  if (held !== sent) ledgers[`${k}`] = held - sent
                }
              }
              yield* Fiber.interrupt(watcher)
              return { outcomes, kills, events, calls, ledgers }
            }).pipe(Effect.provide(corps(kind, way)))
          ).pipe(
            Effect.timeoutOrElse({
              duration: BOUND,
              orElse: () => Effect.die(new Error(`calls still running after ${BOUND}: a call hangs`))
            })
          )

          const failedIdempotent = outcomes.flatMap((o, i) => (calls[i]!.idempotent && !o.ok ? [`${i}: ${o.tag}`] : []))
          assert.deepStrictEqual(failedIdempotent, [], "every idempotent call succeeds")
          const wrong = outcomes.flatMap((o, i) => (o.ok && o.value !== calls[i]!.expected ? [`${i}: ${o.value}`] : []))
          assert.deepStrictEqual(wrong, [], "every answer is the call's own")
          assert.deepStrictEqual(ledgers, {}, "every persisted Ledger holds exactly the ids sent to it")
          const otherErrors = outcomes.flatMap((o) => (!o.ok && o.tag !== "CallLost" ? [o.tag] : []))
          assert.deepStrictEqual(otherErrors, [], "other calls fail only with CallLost")
          // The chaos really happened, and calls were really sent again.
          assert.strictEqual(kills, KILLS)
          assert.isAtLeast(events.filter((e) => e._tag === "CallRedelivered").length, 1)
          assert.deepStrictEqual(
            events.filter((e) => e._tag === "CallQuarantined"),
            []
          )
          // Nothing is left running.
          if (kind === "process") assert.deepStrictEqual(childPids(), childrenBefore)
          else assert.strictEqual(threadResources(), threadsBefore)
        }).pipe(Effect.provideService(References.MinimumLogLevel, "Warn")),
      200_000
    )
  }
})

const errorTag = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "none"
  const error = Exit.findErrorOption(exit)
  if (error._tag === "Some") {
    const value = error.value as { readonly _tag?: string }
    return value._tag ?? String(value)
  }
  return Exit.hasInterrupts(exit) ? "Interrupted" : "Defect"
}

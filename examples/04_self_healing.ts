/**
 * 04 — A Corps that heals itself.
 *
 * A Digest Func runs in 2 child processes. While 2,000 calls are under way,
 * the program SIGKILLs one of its own processes every 250 ms, 6 times. Each
 * time the pool notices the loss, a warm spare takes over the dead process'
 * place and starts a new spare, and the calls that were in flight on it are
 * sent again (`digest` is declared `idempotent`), so every caller gets its
 * answer. `Corps.events` tells what happened; the results are checked against
 * the same digests computed here, and the program exits with 1 if one differs.
 *
 * Prints (counts vary from run to run):
 *
 *   2000 calls, 2000 answered correctly, while 6 processes were killed
 *   healed: 6 losses seen, 6 restarted, <n> calls sent again, 0 quarantined
 *
 * Run: npm run example:healing
 */
import { createHash } from "node:crypto"
import { Deferred, Effect, Exit, Fiber, Layer, References, Schema, Stream } from "effect"
import { Corps, type CorpsEvent, Worker } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"

/** A chain of SHA-256 digests: enough work per call for calls to be in flight when a process dies. */
class Digest extends Worker.Service<Digest>()("Digest", {
  digest: { payload: { seed: Schema.Number, rounds: Schema.Number }, success: Schema.String, idempotent: true },
  pid: { success: Schema.Number }
}) {}

const chain = (seed: number, rounds: number): string => {
  let value = String(seed)
  for (let i = 0; i < rounds; i++) value = createHash("sha256").update(value).digest("hex")
  return value
}

export const DigestLive = Digest.func({
  digest: ({ seed, rounds }) => chain(seed, rounds),
  pid: () => process.pid
})

const CALLS = 2_000
const ROUNDS = 200
const KILLS = 6

if (import.meta.main) {
  const App = Corps.layer([DigestLive], {
    module: import.meta.url,
    placement: { envs: { pool: { kind: "process", count: 2 } }, workers: { Digest: { env: "pool" } } }
  }).pipe(Layer.provide(NodeEnv.layer))

  const program = Effect.gen(function* () {
    const digest = yield* Digest
    const seen: Array<CorpsEvent.CorpsEvent> = []
    // Complete once every kill has been seen and its restart begun (the last may come after the last call).
    const allLossesSeen = yield* Deferred.make<void>()
    const watcher = yield* Effect.forkChild(
      Corps.events.pipe(
        Stream.runForEach((event) =>
          Effect.suspend(() => {
            seen.push(event)
            const restarts = seen.filter((e) => e._tag === "EnvRestarting").length
            return restarts >= KILLS ? Deferred.succeed(allLossesSeen, undefined) : Effect.void
          })
        )
      ),
      { startImmediately: true }
    )
    // The saboteur: a process of the pool is SIGKILLed every 250 ms.
    const saboteur = yield* Effect.forkChild(
      Effect.gen(function* () {
        for (let killed = 0; killed < KILLS; ) {
          yield* Effect.sleep("250 millis")
          const pid = yield* Effect.exit(digest.pid())
          if (Exit.isFailure(pid)) continue
          process.kill(pid.value, "SIGKILL")
          killed++
        }
      })
    )
    const results = yield* Effect.forEach(
      Array.from({ length: CALLS }, (_, seed) => seed),
      (seed) => digest.digest({ seed, rounds: ROUNDS }),
      { concurrency: 32 }
    )
    yield* Fiber.join(saboteur)
    yield* Deferred.await(allLossesSeen).pipe(Effect.timeout("10 seconds"), Effect.ignore)
    yield* Fiber.interrupt(watcher)
    const correct = results.filter((result, seed) => result === chain(seed, ROUNDS)).length
    const count = (tag: CorpsEvent.CorpsEvent["_tag"]) => seen.filter((event) => event._tag === tag).length
    console.log(`${CALLS} calls, ${correct} answered correctly, while ${KILLS} processes were killed`)
    console.log(
      `healed: ${count("EnvCrashed")} losses seen, ${count("EnvRestarting")} restarted, ` +
        `${count("CallRedelivered")} calls sent again, ${count("CallQuarantined")} quarantined`
    )
    if (correct !== CALLS) process.exitCode = 1
  })

  // The events are printed as a summary: the Corps' own log lines (one per loss, restart and
  // re-sent call) are left out here.
  await Effect.runPromise(program.pipe(Effect.provide(App), Effect.provideService(References.MinimumLogLevel, "Error")))
}

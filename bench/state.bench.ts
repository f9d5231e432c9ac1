/**
 * Persisted Conc state: what a call costs when its change is committed, in
 * memory and in PostgreSQL, against a plain Conc and against a hand-written
 * "one UPDATE per call" on the same table (the floor of any per-call commit).
 * Sequential calls, one instance, measured side by side (interleaved rounds).
 *
 * Run alone with `npx node --expose-gc bench/state.bench.ts` (needs PostgreSQL
 * at 127.0.0.1:5432, database `test`).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Corps, State, Worker } from "../src/index.ts"
import { throughputSideBySide } from "./lib/measure.ts"
import { figure, printJson, ratio, section } from "./lib/report.ts"

const databaseUrl = process.env.CORPS_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const MEMORY_OPS = 50_000
const POSTGRES_OPS = 300

class Plain extends Worker.Service<Plain>()("Plain", { bump: { success: Schema.Number } }) {}
class InMemory extends Worker.Service<InMemory>()("InMemory", { bump: { success: Schema.Number } }) {}
class InPostgres extends Worker.Service<InPostgres>()("InPostgres", { bump: { success: Schema.Number } }) {}

const Count = Schema.Struct({ n: Schema.Number })

const PlainLive = Plain.conc(
  Effect.sync(() => {
    let n = 0
    return { bump: () => ++n }
  })
)

const InMemoryLive = InMemory.conc(
  (_key, state) => Effect.succeed({ bump: () => state.update((s) => ({ n: s.n + 1 })).n }),
  { state: { schema: Count, initial: { n: 0 }, store: State.memory() } }
)

const inPostgres = (table: string) =>
  InPostgres.conc((_key, state) => Effect.succeed({ bump: () => state.update((s) => ({ n: s.n + 1 })).n }), {
    state: { schema: Count, initial: { n: 0 }, store: State.postgres({ url: databaseUrl, table }) }
  })

/** Runs `ops` sequential calls of `call`. */
const loop =
  <R>(call: () => Effect.Effect<number, unknown, R>) =>
  (ops: number) =>
    Effect.gen(function* () {
      for (let i = 0; i < ops; i++) yield* call()
    })

/** Persisted Conc calls against a plain Conc (memory) and against raw UPDATEs (PostgreSQL). */
export const runState = async (): Promise<void> => {
  const table = `corps_bench_state_${Date.now().toString(36)}`
  const Sql = PgClient.layer({ url: Redacted.make(databaseUrl), onnotice: () => {} } as PgClient.PgPoolConfig)
  const corps = Corps.layer([PlainLive, InMemoryLive, inPostgres(table)])
  const program = Effect.gen(function* () {
    const plain = yield* Plain
    const memory = yield* InMemory
    const postgres = yield* InPostgres
    const sql = yield* SqlClient.SqlClient
    // The store's row exists once the instance has committed.
    yield* postgres.bump()
    const id = "InPostgres/default"
    let n = 0
    const update = () =>
      Effect.as(
        Effect.orDie(
          sql`UPDATE ${sql(table)} SET value = ${new TextEncoder().encode(JSON.stringify({ n: ++n }))} WHERE id = ${id}`
        ),
        n
      )
    const context = yield* Effect.context<never>()
    const run = (make: (ops: number) => Effect.Effect<void, unknown>) => (ops: number) =>
      Effect.runPromise(Effect.provideContext(make(ops), context))
    const local = yield* Effect.promise(() =>
      throughputSideBySide(
        {
          plain: run(loop(() => plain.bump() as Effect.Effect<number, unknown>)),
          memory: run(loop(() => memory.bump() as Effect.Effect<number, unknown>))
        },
        { ops: MEMORY_OPS, rounds: 7, warmup: 2 }
      )
    )
    const remote = yield* Effect.promise(() =>
      throughputSideBySide(
        {
          postgres: run(loop(() => postgres.bump() as Effect.Effect<number, unknown>)),
          update: run(loop(update))
        },
        { ops: POSTGRES_OPS, rounds: 5, warmup: 1 }
      )
    )
    yield* Effect.orDie(sql`DROP TABLE IF EXISTS ${sql(table)}`)
    return { ...local, ...remote }
  })
  section(`Persisted Conc state: sequential calls that each change the state (calls/s, median of interleaved rounds)`)
  const rates = await Effect.runPromise(program.pipe(Effect.provide(Layer.merge(corps, Sql)), Effect.scoped))
  figure("state.plain.callsPerSec", rates.plain!, "calls/s")
  figure("state.memory.callsPerSec", rates.memory!, "calls/s")
  figure("state.postgres.callsPerSec", rates.postgres!, "calls/s")
  figure("state.update.callsPerSec", rates.update!, "calls/s")
  // Cost ratios: how many times the baseline's time a call takes (lower is better).
  ratio("state.memory.costVsPlain", rates.plain!, rates.memory!)
  ratio("state.postgres.costVsPlain", rates.plain!, rates.postgres!)
  ratio("state.postgres.costVsUpdate", rates.update!, rates.postgres!)
}

if (import.meta.main) {
  await runState()
  printJson()
  process.exit(0)
}

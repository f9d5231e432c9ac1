/**
 * 06 — Workers on a cluster.
 *
 * The same Worker code as every other example, placed on `effect/cluster`
 * runners by configuration. This module is both:
 *
 * - what the runners serve: `corps runner --module examples/06_cluster.ts` (`node src/cli/main.ts runner …`)
 *   imports it and serves `WalletLive` (a Conc: one instance per key, living on
 *   whichever runner owns the key's shard), `GreeterLive` (a Func: spread over
 *   every runner) and `TallyLive` (a Conc whose count survives a move: its
 *   builder reloads it from PostgreSQL, each `add` writes through);
 * - the client: run directly, it places the Workers in a `cluster` Env
 *   (`storage: "sql"`), calls them through ordinary handles and prints which
 *   runner served each call. With `--again` it only adds to the tallies once
 *   more, without resetting them.
 *
 * `examples/06_cluster/run.sh` starts two runners and this client on one
 * machine (PostgreSQL at CORPS_DATABASE_URL), then SIGKILLs the runner that
 * hosts the `apples` tally and runs the client with `--again`: the tallies
 * that lived there are rebuilt on the other runner, reload their counts from
 * the `<CORPS_CLUSTER_PREFIX>_tally` table and continue from them (the calls
 * are persisted, so they wait out the failover, ~3.5 s). Output (pids vary, and
 * so does which tallies live where):
 *
 *   alice: balance 30 (served by runner 4242)
 *   bob: balance 20 (served by runner 4243)
 *   carol: cannot withdraw 50: balance 0
 *   greetings served by runners 4242, 4243
 *   tally apples: 3 (runner 4242)
 *   tally pears: 3 (runner 4243)
 *   tally plums: 3 (runner 4242)
 *   tally figs: 3 (runner 4243)
 *   -- SIGKILL runner 4242 (it hosts tally apples); the tallies go on:
 *   tally apples: 6 (runner 4243, reloaded 3 from PostgreSQL)
 *   tally pears: 6 (runner 4243)
 *   tally plums: 6 (runner 4243, reloaded 3 from PostgreSQL)
 *   tally figs: 6 (runner 4243)
 *
 * Run: examples/06_cluster/run.sh
 */
import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { ClusterEnv, DeliveryId } from "../src/cluster/index.ts"
import { Corps, Worker } from "../src/index.ts"

/** A typed error of the Wallet's contract: it crosses hosts like any value. */
export class Insufficient extends Schema.TaggedError<Insufficient>()("Insufficient", {
  balance: Schema.Number
}) {}

export class Wallet extends Worker.Service<Wallet>()("Wallet", {
  deposit: { payload: { amount: Schema.Number }, success: Schema.Number },
  withdraw: { payload: { amount: Schema.Number }, success: Schema.Number, error: Insufficient },
  /** Idempotent, so persisted: it survives the loss of a runner. */
  runner: { success: Schema.Number, idempotent: true }
}) {}

/** In-memory state: see docs/cluster.md for reloading state when an instance moves. */
export const WalletLive = Wallet.conc(
  Effect.sync(() => {
    let balance = 0
    return {
      deposit: ({ amount }) => (balance += amount),
      withdraw: ({ amount }) =>
        amount > balance ? Effect.fail(new Insufficient({ balance })) : Effect.succeed((balance -= amount)),
      runner: () => process.pid
    }
  })
)

export class Greeter extends Worker.Service<Greeter>()("Greeter", {
  greet: { payload: { name: Schema.String }, success: Schema.Struct({ text: Schema.String, pid: Schema.Number }) }
}) {}

export const GreeterLive = Greeter.func({
  greet: ({ name }) => ({ text: `hello, ${name}`, pid: process.pid })
})

/**
 * A counter per key that survives a move to another runner (runner loss,
 * rebalancing, passivation): the reload pattern of docs/cluster.md.
 */
export class Tally extends Worker.Service<Tally>()("Tally", {
  /** Persisted (see `TallyLive`'s `cluster` option): stored before delivery, so it waits out the loss of a runner. */
  add: { payload: { amount: Schema.Number }, success: Schema.Number },
  /** The count, the runner serving it, and the count this instance reloaded when it was built there. */
  read: {
    success: Schema.Struct({ count: Schema.Number, runner: Schema.Number, reloaded: Schema.Number }),
    idempotent: true
  }
}) {}

/** One table per cluster, named after its table prefix; `_applied` records the deliveries counted. */
const tallyTable = (): string => `${process.env.CORPS_CLUSTER_PREFIX ?? "corps"}_tally`

/** Creates the Tally's tables if missing (two runners may race to: the loser tries again). */
const ensureTallyTables = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS ${sql(tallyTable())} (key TEXT PRIMARY KEY, count INT NOT NULL)`
  yield* sql`CREATE TABLE IF NOT EXISTS ${sql(`${tallyTable()}_applied`)} (delivery TEXT PRIMARY KEY)`
}).pipe(Effect.retry({ times: 3 }), Effect.orDie)

export const TallyLive = Tally.conc(
  (key) =>
    Effect.gen(function* () {
      // The runner's own SqlClient: the builder runs on whichever runner hosts this key now.
      const sql = yield* SqlClient.SqlClient
      yield* ensureTallyTables
      const counts = sql(tallyTable())
      const applied = sql(`${tallyTable()}_applied`)
      // Reload: the instance may have lived on another runner before.
      const rows = yield* sql<{ count: number }>`SELECT count FROM ${counts} WHERE key = ${key}`.pipe(Effect.orDie)
      let count = rows[0]?.count ?? 0
      const reloaded = count
      return {
        add: ({ amount }) =>
          Effect.gen(function* () {
            // Persisted means at least once: a message redelivered after a runner loss keeps its id, count it once.
            const delivery = Option.getOrUndefined(yield* Effect.serviceOption(DeliveryId))
            const next = count + amount
            const counted = yield* sql.withTransaction(
              Effect.gen(function* () {
                if (delivery !== undefined) {
                  const fresh =
                    yield* sql`INSERT INTO ${applied} (delivery) VALUES (${delivery}) ON CONFLICT DO NOTHING RETURNING delivery`
                  if (fresh.length === 0) return false
                }
                yield* sql`INSERT INTO ${counts} (key, count) VALUES (${key}, ${next})
                ON CONFLICT (key) DO UPDATE SET count = EXCLUDED.count`
                return true
              })
            )
            // Write through first, then update memory: the reply is what the caller relies on.
            if (counted) count = next
            return count
          }).pipe(Effect.orDie),
        read: () => ({ count, runner: process.pid, reloaded })
      }
    }),
  // Read by runners and clients alike (both import this module): `add` is stored before delivery.
  { cluster: { persisted: ["add"] } }
)

const fruits = ["apples", "pears", "plums", "figs"]

/** Adds 1 then 2 to each tally; `fresh` first clears the stored counts (the runners must be fresh too). */
const tallies = (fresh: boolean) =>
  Effect.gen(function* () {
    if (fresh) {
      const sql = yield* SqlClient.SqlClient
      yield* ensureTallyTables
      yield* sql`DELETE FROM ${sql(tallyTable())} WHERE key IN ${sql.in(fruits)}`.pipe(Effect.orDie)
    }
    const tally = yield* Tally
    for (const fruit of fruits) {
      const mine = tally.instance(fruit)
      yield* mine.add({ amount: 1 })
      yield* mine.add({ amount: 2 })
      const { count, runner, reloaded } = yield* mine.read()
      const from = reloaded > 0 ? `, reloaded ${reloaded} from PostgreSQL` : ""
      console.log(`tally ${fruit}: ${count} (runner ${runner}${from})`)
    }
  })

const program = Effect.gen(function* () {
  const wallet = yield* Wallet
  for (const [who, amounts] of [
    ["alice", [10, 20]],
    ["bob", [5, 15]]
  ] as const) {
    const mine = wallet.instance(who)
    let balance = 0
    for (const amount of amounts) balance = yield* mine.deposit({ amount })
    console.log(`${who}: balance ${balance} (served by runner ${yield* mine.runner()})`)
  }
  yield* wallet
    .instance("carol")
    .withdraw({ amount: 50 })
    .pipe(
      Effect.catchTag("Insufficient", (e) =>
        Effect.sync(() => console.log(`carol: cannot withdraw 50: balance ${e.balance}`))
      )
    )
  const greeter = yield* Greeter
  const pids = new Set<number>()
  for (let i = 0; i < 32; i++) pids.add((yield* greeter.greet({ name: `n${i}` })).pid)
  console.log(`greetings served by runners ${[...pids].sort().join(", ")}`)
  yield* tallies(true)
})

/**
 * The client's own SqlClient: `TallyLive` requires one (on the runners, the
 * runner's); the client uses it only to reset the tallies.
 */
const Sql = PgClient.layerConfig({ url: Config.Redacted("CORPS_DATABASE_URL") })

const App = Corps.layer([WalletLive, GreeterLive, TallyLive], {
  module: import.meta.url,
  placement: { envs: { cluster: { kind: "cluster", storage: "sql" } }, default: "cluster" }
}).pipe(Layer.provide(ClusterEnv.layer()), Layer.provideMerge(Sql))

// No top-level await: the Corps imports this very module (to find what it
// serves), and a module awaiting at top level cannot be imported until done.
if (import.meta.main) {
  const main = process.argv.includes("--again") ? tallies(false) : program
  Effect.runPromise(main.pipe(Effect.provide(App), Effect.scoped)).then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

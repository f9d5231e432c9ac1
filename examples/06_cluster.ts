/**
 * 06 — Workers on a cluster.
 *
 * The same Worker code as every other example, placed on `effect/cluster`
 * runners by configuration. This module is both:
 *
 * - what the runners serve: `src/cluster/runner.ts --module examples/06_cluster.ts`
 *   imports it and serves `WalletLive` (a Conc: one instance per key, living on
 *   whichever runner owns the key's shard) and `GreeterLive` (a Func: spread
 *   over every runner);
 * - the client: run directly, it places both Workers in a `cluster` Env
 *   (`storage: "sql"`), calls them through ordinary handles and prints which
 *   runner served each call.
 *
 * `examples/06_cluster/run.sh` starts two runners and this client on one
 * machine (PostgreSQL at CORPS_DATABASE_URL). Output (pids vary):
 *
 *   alice: balance 30 (served by runner 4242)
 *   bob: balance 20 (served by runner 4243)
 *   carol: cannot withdraw 50: balance 0
 *   greetings served by runners 4242, 4243
 *
 * Run: examples/06_cluster/run.sh
 */
import { Effect, Layer, Schema } from "effect"
import { ClusterEnv } from "../src/cluster/index.ts"
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
})

const App = Corps.layer([WalletLive, GreeterLive], {
  module: import.meta.url,
  placement: { envs: { cluster: { kind: "cluster", storage: "sql" } }, default: "cluster" }
}).pipe(Layer.provide(ClusterEnv.layer()))

// No top-level await: the Corps imports this very module (to find what it
// serves), and a module awaiting at top level cannot be imported until done.
if (import.meta.main) {
  Effect.runPromise(program.pipe(Effect.provide(App), Effect.scoped)).then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

/**
 * Workers served by the cluster tests' runners. A runner imports this module
 * by URL, so everything here must be importable on its own.
 */
import { Effect, Option, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { DeliveryId } from "../../src/cluster/index.ts"
import { State, Worker } from "../../src/index.ts"

/** A typed error of the Account's own contract. */
export class Overdrawn extends Schema.TaggedError<Overdrawn>()("Overdrawn", {
  balance: Schema.Number
}) {}

/** A stateful account: one instance per key, wherever the cluster puts it. */
export class Account extends Worker.Service<Account>()("Account", {
  deposit: { payload: { amount: Schema.Number }, success: Schema.Number },
  balance: { success: Schema.Number },
  withdraw: { payload: { amount: Schema.Number }, success: Schema.Number, error: Overdrawn },
  crash: { payload: { message: Schema.String } },
  /** Which runner serves this instance (its process id). */
  where: { success: Schema.Number, idempotent: true },
  countdown: { payload: { from: Schema.Number }, success: Schema.Number, stream: true },
  /** Returns a result its Schema cannot carry, or fails with an undeclared error. */
  misbehave: { payload: { what: Schema.Literals(["result", "error"]) }, success: Schema.Number }
}) {}

/** In-memory Account: state is lost when the entity moves. */
export const AccountLive = Account.conc(
  Effect.sync(() => {
    let balance = 0
    return {
      deposit: ({ amount }) => (balance += amount),
      balance: () => balance,
      withdraw: ({ amount }) =>
        amount > balance ? Effect.fail(new Overdrawn({ balance })) : Effect.succeed((balance -= amount)),
      crash: ({ message }) => {
        throw new Error(message)
      },
      where: () => process.pid,
      countdown: ({ from }) => Stream.range(0, from - 1).pipe(Stream.map((i) => from - i)),
      misbehave: ({ what }) => (what === "result" ? ("not a number" as any) : Effect.fail(42 as never))
    }
  }),
  { concurrent: ["balance", "where"] }
)

/** A stateless Func: replicated on every runner. */
export class Hasher extends Worker.Service<Hasher>()("Hasher", {
  hash: { payload: { text: Schema.String }, success: Schema.String },
  pid: { success: Schema.Number }
}) {}

export const HasherLive = Hasher.func({
  hash: ({ text }) => `h:${text.length}:${text}`,
  pid: () => process.pid
})

/**
 * A Worker whose handler records each call in Postgres, exactly once: the
 * row carries the message's DeliveryId (unique), so a redelivery after a
 * runner loss adds nothing; `<table>_attempts` counts every delivery.
 */
export class Ledger extends Worker.Service<Ledger>()("Ledger", {
  record: { payload: { id: Schema.String }, success: Schema.Number, idempotent: true },
  ping: { payload: { n: Schema.Number }, success: Schema.Number, idempotent: true },
  where: { success: Schema.Number },
  /** Never completes; records its interruption (the caller gave up) in `<table>_interrupted`. */
  hold: { payload: { id: Schema.String } }
}) {}

/** The table the Ledger writes to (its name comes from the runner's environment). */
export const ledgerTable = (): string => process.env.CORPS_TEST_LEDGER ?? "corps_test_ledger"

export const LedgerLive = Ledger.conc(
  (key) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const table = sql(ledgerTable())
      return {
        record: ({ id }) =>
          Effect.gen(function* () {
            const delivery = Option.getOrElse(yield* Effect.serviceOption(DeliveryId), () => id)
            yield* sql`INSERT INTO ${sql(`${ledgerTable()}_attempts`)} (id) VALUES (${id})`
            yield* sql`INSERT INTO ${table} (delivery, entity, id, pid) VALUES (${delivery}, ${key}, ${id}, ${process.pid})
              ON CONFLICT (delivery) DO NOTHING`
            return process.pid
          }).pipe(Effect.orDie),
        ping: ({ n }) => n,
        where: () => process.pid,
        hold: ({ id }) =>
          Effect.never.pipe(
            Effect.onInterrupt(() =>
              sql`INSERT INTO ${sql(`${ledgerTable()}_interrupted`)} (id) VALUES (${id})`.pipe(Effect.orDie)
            )
          )
      }
    }),
  // `ping` is idempotent but kept volatile (re-sent on loss, not stored); runners and callers read it here.
  { concurrent: ["ping", "where", "hold"], cluster: { volatile: ["ping"] } }
)

/** A Func that uses another Worker: on a runner, its Account handle goes through the cluster. */
export class Teller extends Worker.Service<Teller>()("Teller", {
  depositTo: { payload: { key: Schema.String, amount: Schema.Number }, success: Schema.Number }
}) {}

export const TellerLive = Teller.func(
  Effect.gen(function* () {
    const account = yield* Account
    return {
      depositTo: ({ key, amount }) => Effect.orDie(account.instance(key).deposit({ amount }))
    }
  })
)

/**
 * A Conc that is handed Account handles and hands them out: the handles cross
 * from the caller to a runner, from one runner to another, and back.
 */
export class Courier extends Worker.Service<Courier>()("Courier", {
  /** Deposits into the Account behind `account` (a handle in the payload), here. */
  depositVia: {
    payload: { account: Account.Handle, amount: Schema.Number },
    success: Schema.Struct({ balance: Schema.Number, pid: Schema.Number })
  },
  /** Passes `account` on to Courier instance `to` (on whichever runner hosts it), which deposits. */
  passTo: {
    payload: { account: Account.Handle, amount: Schema.Number, to: Schema.String },
    success: Schema.Struct({ balance: Schema.Number, pid: Schema.Number })
  },
  /** A handle to Account instance `key`, made on the runner. */
  accountOf: { payload: { key: Schema.String }, success: Account.Handle },
  where: { success: Schema.Number }
}) {}

export const CourierLive = Courier.conc(
  Effect.gen(function* () {
    const accounts = yield* Account
    const couriers = yield* Courier
    return {
      depositVia: ({ account, amount }) =>
        Effect.map(Effect.orDie(account.deposit({ amount })), (balance) => ({ balance, pid: process.pid })),
      passTo: ({ account, amount, to }) => Effect.orDie(couriers.instance(to).depositVia({ account, amount })),
      accountOf: ({ key }) => accounts.instance(key),
      where: () => process.pid
    }
  }),
  { concurrent: ["where"] }
)

/** A Func that takes and makes Account handles: the tests place it in a thread, beside a cluster. */
export class Forwarder extends Worker.Service<Forwarder>()("Forwarder", {
  depositVia: { payload: { account: Account.Handle, amount: Schema.Number }, success: Schema.Number },
  accountOf: { payload: { key: Schema.String }, success: Account.Handle }
}) {}

/** Forwarder's implementation. */
export const ForwarderLive = Forwarder.func(
  Effect.gen(function* () {
    const accounts = yield* Account
    return {
      depositVia: ({ account, amount }) => Effect.orDie(account.deposit({ amount })),
      accountOf: ({ key }) => accounts.instance(key)
    }
  })
)

/** A Worker with permissive Schemas: what they let through must still be plain data to cross the cluster. */
export class Loose extends Worker.Service<Loose>()("Loose", {
  /** Echoes its payload. */
  echo: { payload: Schema.Unknown, success: Schema.Unknown },
  /** Returns a value holding a function or a symbol. */
  give: { payload: { what: Schema.Literals(["function", "symbol"]) }, success: Schema.Unknown },
  /** A stream whose second element holds a function. */
  items: { success: Schema.Unknown, stream: true }
}) {}

export const LooseLive = Loose.func({
  echo: (payload) => payload,
  give: ({ what }) => (what === "function" ? { ok: 1, f: () => 1 } : { ok: 1, s: Symbol("s") }),
  items: () => Stream.make({ ok: 1 } as unknown, { ok: 2, f: () => 2 } as unknown)
})

/** A persisted counter (PostgreSQL, `<ledger table>_state`): re-homed after a runner loss, it resumes. */
export class Vault extends Worker.Service<Vault>()("Vault", {
  increment: { payload: { by: Schema.Number }, success: Schema.Number },
  get: { success: Schema.Number },
  /** Adds `by`, then dies: rolled back, and the instance is rebuilt from the store. */
  boom: { payload: { by: Schema.Number } },
  where: { success: Schema.Number }
}) {}

export const VaultLive = Vault.conc(
  (_key, state) =>
    Effect.succeed({
      increment: ({ by }) => state.update((s) => ({ n: s.n + by })).n,
      get: () => state.get().n,
      boom: ({ by }) => {
        state.set({ n: state.get().n + by })
        throw new Error("vault boom")
      },
      where: () => process.pid
    }),
  {
    onDefect: "restart",
    state: {
      schema: Schema.Struct({ n: Schema.Number }),
      initial: { n: 0 },
      store: State.postgres({
        url: process.env.CORPS_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
        table: `${ledgerTable()}_state`
      })
    }
  }
)

/** Workers made with `Worker.create` (a builder that may fail, a finalizer journaled on the runner), and their user. */
export {
  Resource,
  ResourceLive,
  SeedClient,
  SeedClientLive,
  SeedServer,
  SeedServerLive,
  User,
  UserLive
} from "../fixtures/created.ts"

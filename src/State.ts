/**
 * State that survives: an optional persisted state for a Conc. The state has
 * a Schema and lives in a store, addressed by (Worker, key); it is committed
 * after each call (or every n calls), and an instance that is restarted,
 * re-homed to another Env or runner, or activated again resumes from the last
 * committed state.
 *
 * Stores are effect's own `KeyValueStore` (`effect/persistence`): in memory,
 * in PostgreSQL through `@effect/sql-pg` (effect's SQL-backed store, one row
 * per instance), or any `KeyValueStore` layer.
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { State, Worker } from "effect-corps"
 *
 * class Counter extends Worker.Service<Counter>()("Counter", {
 *   increment: { payload: { by: Schema.Number }, success: Schema.Number },
 *   get: { success: Schema.Number }
 * }) {}
 *
 * export const CounterLive = Counter.conc(
 *   (_key, state) =>
 *     Effect.succeed({
 *       increment: ({ by }) => state.update((s) => ({ n: s.n + by })).n,
 *       get: () => state.get().n
 *     }),
 *   {
 *     onDefect: "restart",
 *     state: {
 *       schema: Schema.Struct({ n: Schema.Number }),
 *       initial: { n: 0 },
 *       store: State.postgres({ url: "postgres://postgres@127.0.0.1:5432/app", table: "counter_state" })
 *     }
 *   }
 * )
 * ```
 *
 * See docs/state.md for the commit modes and what survives what.
 *
 * @since 0.2.0
 */
import { Context, Effect, Layer, Redacted, Schedule, type Schema } from "effect"
import { KeyValueStore } from "effect/persistence"
import type { SqlClient } from "effect/sql"

const StoreTypeId = "~effect-corps/State/Store" as const

/**
 * Where persisted states are kept: a `KeyValueStore` layer, built once per
 * runtime (a Corps, a thread or process Env, a cluster runner) when its first
 * persisted instance starts, and released when its last one closes.
 *
 * Stores are values in the module that defines the Corps, so each Env that
 * imports it makes its own: a memory store is private to one runtime, a
 * PostgreSQL store is shared by every Env and runner that reaches the database.
 *
 * @since 0.2.0
 * @category models
 */
export interface Store {
  readonly [StoreTypeId]: typeof StoreTypeId
  /** What it is, for messages (`memory`, `postgres`, …). */
  readonly label: string
  /** The store itself. */
  readonly layer: Layer.Layer<KeyValueStore.KeyValueStore, unknown>
}

/**
 * Whether a value is a {@link Store}.
 *
 * @since 0.2.0
 * @category guards
 */
export const isStore = (u: unknown): u is Store => typeof u === "object" && u !== null && StoreTypeId in u

/**
 * A store from any `KeyValueStore` layer (files, Redis, another SQL database…).
 *
 * @example
 * ```ts
 * import { KeyValueStore } from "effect/persistence"
 * import { State } from "effect-corps"
 *
 * const store = State.fromKeyValueStore(KeyValueStore.layerMemory, "scratch")
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromKeyValueStore = (
  layer: Layer.Layer<KeyValueStore.KeyValueStore, unknown>,
  label = "key-value store"
): Store => ({ [StoreTypeId]: StoreTypeId, label, layer })

/**
 * A store in this runtime's memory. It outlives an instance (a restart after a
 * defect, a re-activation), never its runtime: a thread or process Env that is
 * lost takes its memory store with it. Use it for tests, caches and state a
 * restart may keep but a crash may lose; use {@link postgres} for the rest.
 *
 * Each call makes a new, empty store.
 *
 * @since 0.2.0
 * @category constructors
 */
export const memory = (): Store => {
  // Made now, not per build: the store must outlive every instance (and every build of the layer).
  const store = Effect.runSync(
    Effect.scoped(Effect.map(Layer.build(KeyValueStore.layerMemory), Context.get(KeyValueStore.KeyValueStore)))
  )
  return fromKeyValueStore(Layer.succeed(KeyValueStore.KeyValueStore, store), "memory")
}

/**
 * Options of a {@link postgres} store.
 *
 * @since 0.2.0
 * @category models
 */
export interface PostgresOptions {
  /** The database, as a `postgres://` URL. */
  readonly url: string | Redacted.Redacted<string>
  /** The table of states (created if missing): one row per instance, keyed by `Worker/key`. */
  readonly table: string
  /** Connections of this runtime's pool (default 4). */
  readonly maxConnections?: number | undefined
}

/**
 * A store in PostgreSQL, through `@effect/sql-pg` and effect's SQL-backed
 * `KeyValueStore` (`KeyValueStore.layerSql`). Shared by every Env and cluster
 * runner that reaches the database, so an instance re-homed after its Env or
 * runner was lost resumes where it was. `@effect/sql-pg` is loaded only when
 * such a store is first used.
 *
 * @since 0.2.0
 * @category constructors
 */
export const postgres = (options: PostgresOptions): Store =>
  fromKeyValueStore(
    Layer.unwrap(
      Effect.map(
        Effect.promise(() => import("@effect/sql-pg")),
        ({ PgClient }) =>
          layerSqlStore(options.table).pipe(
            Layer.provide(
              PgClient.layer({
                url: typeof options.url === "string" ? Redacted.make(options.url) : options.url,
                maxConnections: options.maxConnections ?? 4,
                onnotice: () => {}
              } as never)
            )
          )
      )
    ),
    "postgres"
  )

/**
 * A store in a SQL database reached through the given `SqlClient` layer
 * (effect's `KeyValueStore.layerSql`, one row per instance in `table`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const sql = (client: Layer.Layer<SqlClient.SqlClient, unknown>, options: { readonly table: string }): Store =>
  fromKeyValueStore(layerSqlStore(options.table).pipe(Layer.provide(client)), "sql")

/**
 * effect's SQL `KeyValueStore`, whose building creates its table if missing.
 * Several Envs (threads, processes, runners) building it at once on a fresh
 * table race in PostgreSQL's `CREATE TABLE IF NOT EXISTS` (the loser fails on
 * a catalog unique index, as a defect of the layer): a build that fails is
 * tried again a few times, and by then the table exists.
 */
const layerSqlStore = (table: string): Layer.Layer<KeyValueStore.KeyValueStore, never, SqlClient.SqlClient> =>
  Layer.effect(KeyValueStore.KeyValueStore)(
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const context = yield* Layer.buildWithScope(KeyValueStore.layerSql({ table }), scope).pipe(
        Effect.sandbox,
        Effect.retry({ times: 4, schedule: Schedule.exponential("20 millis") }),
        Effect.catch((cause) => Effect.failCause(cause))
      )
      return Context.get(context, KeyValueStore.KeyValueStore)
    })
  ) as Layer.Layer<KeyValueStore.KeyValueStore, never, SqlClient.SqlClient>

/**
 * When a persisted Conc writes its state to the store.
 *
 * - `"call"` (the default): after every call that changed the state, before
 *   the caller gets its reply. An acknowledged call's change is never lost.
 * - `{ every: n }`: after every n-th call that changed it (and when the
 *   instance closes). Fewer writes; a crash loses up to n − 1 acknowledged
 *   calls' changes.
 *
 * @since 0.2.0
 * @category models
 */
export type Commit = "call" | { readonly every: number }

/**
 * The persisted state of a Conc: its Schema (which encodes it for the store),
 * its value for an instance never committed before, and its store.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options<S extends Schema.Top> {
  readonly schema: S
  /** The state of a new instance, or a function of its key. */
  readonly initial: S["Type"] | ((key: string) => S["Type"])
  readonly store: Store
  /** When the state is written (default `"call"`). */
  readonly commit?: Commit | undefined
}

/**
 * An instance's state, as its handlers see it: a small synchronous Ref (calls
 * of one instance run one at a time, so no Effect is needed). Replace the
 * value, never mutate it in place: the last committed value is kept beside it
 * to roll back a call that died.
 *
 * @since 0.2.0
 * @category models
 */
export interface Ref<A> {
  /** The current value. */
  get(): A
  /** Replaces the value. */
  set(value: A): void
  /** Replaces the value with `f` of it; returns the new value. */
  update(f: (value: A) => A): A
  /** Computes a result and a new value from the value; returns the result. */
  modify<B>(f: (value: A) => readonly [B, A]): B
}

/**
 * A persisted Conc instance: its state loaded from the store before the
 * builder runs, its mailbox handlers wrapped so that a call's change is
 * committed (or rolled back) when the call ends.
 *
 * This lives in the implementation's builder, so the same persistence serves
 * every host of a Conc: the caller's runtime, thread and process Envs (which
 * run the builder themselves) and cluster entities.
 *
 * A call is a unit of change: when it ends (a value or a typed error) its
 * change becomes the instance's good state and is committed (every call, or
 * every n); when it dies or is interrupted, the state goes back to the last
 * good one. Concurrent methods (outside the mailbox) only read: wrapping them
 * would commit a mailbox call's change half-way.
 */
import { Cause, Context, Effect, Exit, Layer, Option, RcRef, Schema, Scope } from "effect"
import { KeyValueStore } from "effect/persistence"
import { StateError } from "../CorpsError.ts"
import type * as State from "../State.ts"
import { type AnyHandler, isEffectResult } from "./invoke.ts"
import { messageOf } from "./message.ts"

/** The instance's state: the value handlers see, the last good one, the last committed one. */
class StateCell<A> implements State.Ref<A> {
  current: A
  good: A
  committed: A
  constructor(value: A) {
    this.current = value
    this.good = value
    this.committed = value
  }
  get(): A {
    return this.current
  }
  set(value: A): void {
    this.current = value
  }
  update(f: (value: A) => A): A {
    this.current = f(this.current)
    return this.current
  }
  modify<B>(f: (value: A) => readonly [B, A]): B {
    const [result, next] = f(this.current)
    this.current = next
    return result
  }
}

/** One shared, reference-counted build of each store per runtime; released when its last instance closes. */
const stores = new WeakMap<State.Store, RcRef.RcRef<KeyValueStore.KeyValueStore, unknown>>()
/** The RcRefs' own scope: never closed (each RcRef releases its store when its last user leaves). */
const storesScope = Scope.makeUnsafe()

const storeRef = (store: State.Store): RcRef.RcRef<KeyValueStore.KeyValueStore, unknown> => {
  let ref = stores.get(store)
  if (ref === undefined) {
    ref = Effect.runSync(
      Scope.provide(
        RcRef.make({
          acquire: Effect.map(Layer.build(store.layer), Context.get(KeyValueStore.KeyValueStore))
        }),
        storesScope
      )
    )
    stores.set(store, ref)
  }
  return ref
}

/** Checks the `state` option where the implementation is defined; throws a StateError. */
export const checkOptions = (worker: string, options: State.Options<Schema.Top>): void => {
  const commit = options.commit ?? "call"
  if (commit !== "call") {
    const every = typeof commit === "object" && commit !== null ? commit.every : undefined
    if (typeof every !== "number" || !Number.isInteger(every) || every < 1) {
      throw new StateError({
        worker,
        reason: "options",
        detail: `commit must be "call" or { every: n } with n a positive integer, not ${JSON.stringify(commit)}`
      })
    }
  }
  if (typeof options.initial !== "function") {
    const encoded = Schema.encodeUnknownExit(
      Schema.toCodecJson(options.schema) as unknown as Schema.Codec<unknown, unknown>
    )(options.initial)
    if (Exit.isFailure(encoded)) {
      throw new StateError({
        worker,
        reason: "options",
        detail: `initial does not fit the state's Schema: ${Cause.pretty(encoded.cause)}`
      })
    }
  }
}

/**
 * The builder of a persisted Conc: loads the instance's state, runs `build`
 * with its Ref, wraps the mailbox handlers. Needs the instance's Scope.
 */
export const persistedBuild =
  (
    worker: string,
    concurrent: ReadonlySet<string>,
    options: State.Options<Schema.Top>,
    build: (key: string, state: State.Ref<unknown>) => Effect.Effect<Record<string, AnyHandler>, never, any>
  ) =>
  (key: string): Effect.Effect<Record<string, AnyHandler>, never, any> =>
    Effect.gen(function* () {
      const fail = (reason: "load" | "commit", detail: string) => new StateError({ worker, key, reason, detail })
      const kv = yield* Effect.mapError(RcRef.get(storeRef(options.store)), (cause) =>
        fail("load", `cannot open the ${options.store.label} store: ${messageOf(cause)}`)
      )
      const store = KeyValueStore.toSchemaStore(kv, options.schema as Schema.Codec<unknown, unknown>)
      const id = `${worker}/${key}`
      const loaded = yield* Effect.mapError(store.get(id), (cause) => fail("load", messageOf(cause)))
      const cell = new StateCell<unknown>(
        Option.isSome(loaded)
          ? loaded.value
          : typeof options.initial === "function"
            ? (options.initial as (key: string) => unknown)(key)
            : options.initial
      )
      const every = options.commit === undefined || options.commit === "call" ? 1 : options.commit.every
      let uncommitted = 0

      // Uninterruptible: a caller that gives up mid-write must not leave `committed` unsure.
      const write = (value: unknown) =>
        Effect.uninterruptible(
          Effect.matchEffect(store.set(id, value), {
            onSuccess: () =>
              Effect.sync(() => {
                cell.committed = value
                uncommitted = 0
              }),
            onFailure: (cause) => Effect.fail(fail("commit", messageOf(cause)))
          })
        )

      /** A call ended (a value or a typed error): its change is now good, and committed when due. */
      const ended = <A>(outcome: Exit.Exit<A, unknown>): Effect.Effect<A, unknown> => {
        cell.good = cell.current
        if (cell.good === cell.committed || ++uncommitted < every) return outcome
        return Effect.matchCauseEffect(write(cell.good), {
          onSuccess: () => outcome,
          onFailure: (cause) => {
            // Not kept, so not acknowledged: back to what the store holds.
            cell.current = cell.good = cell.committed
            uncommitted = 0
            return Effect.die(Cause.squash(cause))
          }
        })
      }
      const rollBack = () => {
        cell.current = cell.good
      }

      // Under `{ every }`, what is good but not yet written goes to the store when the instance closes.
      yield* Effect.addFinalizer(() =>
        cell.good === cell.committed
          ? Effect.void
          : Effect.catchCause(write(cell.good), (cause) =>
              Effect.logWarning(`effect-corps: ${worker}[${key}] state not written on close`, cause)
            )
      )

      const handlers = yield* build(key, cell)
      const wrapped: Record<string, AnyHandler> = {}
      for (const [method, handler] of Object.entries(handlers)) {
        wrapped[method] = concurrent.has(method)
          ? handler
          : (payload) => {
              let result: unknown
              try {
                result = handler(payload)
              } catch (defect) {
                rollBack()
                throw defect
              }
              if (!isEffectResult(result)) return ended(Exit.succeed(result))
              // A handler that answers with an Exit (`Effect.succeed`, `Effect.fail`…) stays an Exit, so the
              // Conc keeps its synchronous path when no write is due.
              if (Exit.isExit(result)) {
                if (Exit.isFailure(result) && (Cause.hasDies(result.cause) || Cause.hasInterrupts(result.cause))) {
                  rollBack()
                  return result
                }
                return ended(result as Exit.Exit<unknown, unknown>)
              }
              return Effect.onInterrupt(
                Effect.matchCauseEffect(result, {
                  onSuccess: (value) => ended(Exit.succeed(value)),
                  onFailure: (cause) => {
                    if (Cause.hasDies(cause) || Cause.hasInterrupts(cause)) {
                      rollBack()
                      return Effect.failCause(cause)
                    }
                    return ended(Exit.failCause(cause))
                  }
                }),
                () => Effect.sync(rollBack)
              )
            }
      }
      return wrapped
    }).pipe(Effect.orDie)

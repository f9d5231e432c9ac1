/**
 * Workers: named contracts of Schema-typed methods that are also Effect
 * services, and their stateful (Conc) and stateless (Func) implementations.
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Worker } from "effect-corps"
 *
 * class Counter extends Worker.Service<Counter>()("Counter", {
 *   increment: { payload: { by: Schema.Number }, success: Schema.Number },
 *   get: { success: Schema.Number }
 * }) {}
 *
 * const CounterLive = Counter.conc(Effect.sync(() => {
 *   let n = 0
 *   return { increment: ({ by }) => (n += by), get: () => n }
 * }))
 *
 * const program = Effect.gen(function* () {
 *   const counter = yield* Counter
 *   yield* counter.increment({ by: 1 })
 * })
 * ```
 *
 * @since 0.1.0
 */
import { Context, type Duration, Effect, type Schedule, Schema, SchemaGetter, type Scope, Stream } from "effect"
import { Rpc, RpcGroup, type RpcSchema } from "effect/rpc"
import type { CallLost } from "./CorpsError.ts"
import { type CallError, InvalidInit, type InvalidLocation } from "./CorpsError.ts"
import { CLOSE, closeInstance, create as createInstances, initCodec, START } from "./internal/create.ts"
import { createdBuild } from "./internal/created.ts"
import { type HandleBase, type HandleClass, isHandleOf, makeHandleClass, registerContract } from "./internal/handle.ts"
import { withLookup } from "./internal/provided.ts"
import { resolveHandle, unreachableEntry } from "./internal/registry.ts"
import { checkOptions as checkStateOptions, persistedBuild } from "./internal/state.ts"
import type * as State from "./State.ts"

// ---------------------------------------------------------------------------
// Contracts
// ---------------------------------------------------------------------------

/**
 * One method of a contract. `payload` is a Schema or the fields of a struct;
 * a missing `success` means void, a missing `error` means the method has no
 * typed errors of its own. `stream: true` makes the success a stream of
 * `success` values. `idempotent: true` declares that running a call twice is
 * harmless: in a thread or process Env, a call lost with its Env is sent
 * again (to another replica of a Func, or to the restarted Env of a Conc
 * key) under `retry`, and the caller sees only latency; any other call fails
 * with `CallLost` (docs/redelivery.md). In a cluster Env it makes the method
 * persisted (docs/cluster.md).
 *
 * @example
 * ```ts
 * class Resizer extends Worker.Service<Resizer>()("Resizer", {
 *   resize: {
 *     payload: { url: Schema.String, width: Schema.Number },
 *     success: Schema.Uint8Array,
 *     idempotent: true,
 *     retry: { times: 5, base: "50 millis" },
 *     quarantineAfter: 3
 *   }
 * }) {}
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface MethodSpec {
  readonly payload?: Schema.Top | Schema.Struct.Fields | undefined
  readonly success?: Schema.Top | undefined
  readonly error?: Schema.Top | undefined
  readonly stream?: boolean | undefined
  readonly idempotent?: boolean | undefined
  /**
   * How a call of an `idempotent` method lost with its thread or process Env
   * is sent again: a {@link RetryPolicy} or any `Schedule` (its input is the
   * `CallLost` of the last attempt; when it ends, the caller gets that
   * `CallLost`). Default: {@link defaultRetry}. Read only when `idempotent`
   * is `true`, and only by thread and process Envs (streams are never sent
   * again).
   *
   * @since 0.2.0
   */
  readonly retry?: RetryPolicy | Schedule.Schedule<unknown, CallLost> | undefined
  /**
   * How many times one call of an `idempotent` method may take down its Env
   * before it is quarantined: it then fails with `PoisonCall` and is never
   * sent again. An integer ≥ 1; default 2.
   *
   * @since 0.2.0
   */
  readonly quarantineAfter?: number | undefined
  /**
   * Move the payload's byte arrays (`Uint8Array` and other typed arrays) to a
   * thread Env instead of copying them: faster for large buffers, but the
   * caller's arrays are emptied (their buffers are detached). Processes copy
   * anyway; the local FastPath passes them as they are.
   */
  readonly transfer?: boolean | undefined
}

/**
 * The data form of a method's `retry`: exponential backoff starting at
 * `base`, doubling each time, each pause at most `cap`, for as long as
 * `within` after the loss and at most `times` re-sends.
 *
 * @since 0.2.0
 * @category models
 */
export interface RetryPolicy {
  /** Re-sends at most (an integer ≥ 0; 0 turns re-delivery off). Default: no limit but `within`. */
  readonly times?: number | undefined
  /** How long after the loss the call may still be sent again. Default 30 s. */
  readonly within?: Duration.Input | undefined
  /** The first pause. Default 20 ms. */
  readonly base?: Duration.Input | undefined
  /** The longest pause. Default 1 s. */
  readonly cap?: Duration.Input | undefined
}

/**
 * The retry policy of an `idempotent` method that declares none: pauses of
 * 20 ms, 40 ms, 80 ms… and at most 1 s between re-sends, for up to 30 s
 * after the loss (the cluster's `retryWithin` default). A re-send to an Env
 * that is still restarting is refused at once without running, so the
 * policy is what waits for the replacement: a restart takes ~0.5–1 s on an
 * idle machine and several seconds on a loaded one.
 *
 * @since 0.2.0
 * @category models
 */
export const defaultRetry: {
  readonly within: Duration.Input
  readonly base: Duration.Input
  readonly cap: Duration.Input
} = {
  within: "30 seconds",
  base: "20 millis",
  cap: "1 second"
}

/**
 * The methods of a contract, by name.
 *
 * @since 0.1.0
 * @category models
 */
export type Methods = { readonly [name: string]: MethodSpec }

/** @internal */
export type PayloadSchemaOf<S extends MethodSpec> = S["payload"] extends Schema.Top
  ? S["payload"]
  : S["payload"] extends Schema.Struct.Fields
    ? Schema.Struct<S["payload"]>
    : typeof Schema.Void

/** @internal */
export type SuccessSchemaOf<S extends MethodSpec> = S["success"] extends Schema.Top ? S["success"] : typeof Schema.Void

/** @internal */
export type ErrorSchemaOf<S extends MethodSpec> = S["error"] extends Schema.Top ? S["error"] : typeof Schema.Never

/**
 * The payload type of a method. `H` is the handle type that stands for a
 * {@link SelfHandle} in it (see {@link Service}'s callback form).
 *
 * @since 0.1.0
 * @category type-level
 */
export type Payload<S extends MethodSpec, H = never> = ResolveSelf<PayloadSchemaOf<S>["Type"], H>

/**
 * The success type of a method (the element type for streams).
 *
 * @since 0.1.0
 * @category type-level
 */
export type Success<S extends MethodSpec, H = never> = ResolveSelf<SuccessSchemaOf<S>["Type"], H>

// ---------------------------------------------------------------------------
// Self-handles
// ---------------------------------------------------------------------------

/** @internal */
export const SelfHandleTypeId: unique symbol = Symbol.for("effect-corps/SelfHandle")

/**
 * The type a contract's own handle has while the contract is being declared
 * (a class cannot name its own type in its base expression, TS2506). In the
 * handle's and the handlers' types it reads as the Worker's own handle: as a
 * payload or success value, as a field of one, as an array of either, and as
 * an optional field. Deeper (inside an `Option`, a nested struct) it stays a
 * `SelfHandle`, which holds the very handle at run time.
 *
 * @since 0.3.0
 * @category models
 */
export interface SelfHandle {
  readonly [SelfHandleTypeId]: typeof SelfHandleTypeId
  readonly worker: string
  readonly key: string
  readonly corps: string
}

/**
 * The Schema a contract's callback receives for its own handles (see
 * {@link Service}).
 *
 * @since 0.3.0
 * @category models
 */
export type SelfHandleSchema = Schema.Codec<SelfHandle, HandleEncoded>

type SwapSelf<F, H> = F extends SelfHandle ? H : F extends ReadonlyArray<SelfHandle> ? ReadonlyArray<H> : F

type HasSelfField<T> = {
  [K in keyof T]-?: [Extract<T[K], SelfHandle | ReadonlyArray<SelfHandle>>] extends [never] ? never : K
}[keyof T]

/**
 * `T` with its {@link SelfHandle}s read as `H` (top level, fields, arrays);
 * untouched when `H` is `never` or `T` holds none.
 *
 * @since 0.3.0
 * @category type-level
 */
export type ResolveSelf<T, H> = [H] extends [never]
  ? T
  : 0 extends 1 & T
    ? T
    : T extends SelfHandle | ReadonlyArray<SelfHandle>
      ? SwapSelf<T, H>
      : T extends object
        ? [HasSelfField<T>] extends [never]
          ? T
          : { [K in keyof T]: SwapSelf<T[K], H> }
        : T

/**
 * The declared error type of a method.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Failure<S extends MethodSpec> = ErrorSchemaOf<S>["Type"]

/** @internal */
export type RpcOf<Tag extends string, S extends MethodSpec> = Rpc.Rpc<
  Tag,
  PayloadSchemaOf<S>,
  S["stream"] extends true ? RpcSchema.Stream<SuccessSchemaOf<S>, ErrorSchemaOf<S>> : SuccessSchemaOf<S>,
  S["stream"] extends true ? typeof Schema.Never : ErrorSchemaOf<S>
>

/**
 * The `effect/rpc` procedures of a contract: the same definition serves
 * threads, processes, sockets and cluster entities.
 *
 * @since 0.1.0
 * @category type-level
 */
export type RpcsOf<M extends Methods> = { [K in keyof M & string]: RpcOf<K, M[K]> }[keyof M & string]

type CallArgs<S extends MethodSpec, H = never> = [Payload<S, H>] extends [void]
  ? [payload?: Payload<S, H>]
  : [payload: Payload<S, H>]

/**
 * How a caller sees one method: an Effect (or a Stream) failing with the
 * method's own errors or a {@link CallError}.
 *
 * @since 0.1.0
 * @category models
 */
export type ClientMethod<S extends MethodSpec, H = never> = (
  ...args: CallArgs<S, H>
) => S["stream"] extends true
  ? Stream.Stream<Success<S, H>, Failure<S> | CallError>
  : Effect.Effect<Success<S, H>, Failure<S> | CallError>

/**
 * A typed reference to one instance of a Worker: its methods, the instance's
 * key, and `instance(key)` to reach a sibling instance. Handles have a Schema
 * (`MyWorker.Handle`), so they can be passed to other Workers, in any Env, and
 * stay callable.
 *
 * @since 0.1.0
 * @category models
 */
export type Handle<M extends Methods> = { readonly [K in keyof M]: ClientMethod<M[K], Handle<M>> } & {
  readonly worker: string
  readonly key: string
  readonly corps: string
  instance(key: string): Handle<M>
}

/**
 * One handler of an implementation. Effect handlers have no requirements:
 * take services in the builder and close over them. A plain synchronous
 * function is allowed and is the fastest kind: it runs with no Effect
 * machinery at all.
 *
 * Beside its declared errors, a handler may fail with any {@link CallError}
 * met on a call it made to another Worker (no `orDie` needed): its caller
 * receives it wrapped in a `DownstreamFailed` that names this method (see
 * docs/errors.md).
 *
 * @since 0.1.0
 * @category models
 */
export type Handler<S extends MethodSpec, H = never> = (
  payload: Payload<S, H>
) => S["stream"] extends true
  ? Stream.Stream<Success<S, H>, Failure<S> | CallError>
  : Effect.Effect<Success<S, H>, Failure<S> | CallError> | Success<S, H>

/**
 * The handlers of an implementation, one per contract method.
 *
 * @since 0.1.0
 * @category models
 */
export type Handlers<M extends Methods> = { readonly [K in keyof M]: Handler<M[K], Handle<M>> }

// ---------------------------------------------------------------------------
// Implementations
// ---------------------------------------------------------------------------

/** @internal */
export const ImplementationTypeId: unique symbol = Symbol.for("effect-corps/Implementation")

/**
 * Options of a Conc (stateful) implementation.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConcOptions<M extends Methods> {
  /**
   * Waiting calls an instance holds before it is full (default 1024). Under
   * `onFull: "suspend"` callers beyond it wait in the same FIFO (they are
   * suspended, so backpressure reaches them); under `"fail"` they get
   * `MailboxFull`.
   */
  readonly capacity?: number | undefined
  /** What a call finds when the mailbox is full: wait (default) or fail with `MailboxFull`. */
  readonly onFull?: "suspend" | "fail" | undefined
  /** Methods that skip the mailbox and may run beside other calls (read-only queries, say). */
  readonly concurrent?: ReadonlyArray<keyof M & string> | undefined
  /** How the Worker's calls travel when it is placed in a `cluster` Env (ignored elsewhere). */
  readonly cluster?: ClusterOptions<M> | undefined
  /**
   * What a handler's defect (a throw or a die) does to its instance. Either
   * way the caller gets `WorkerDefect`. `"resume"` (the default) keeps the
   * instance and its state. `"restart"` retires it: its finalizers run (its
   * Scope closes), then the next call — calls already queued included, in
   * their order — meets a fresh instance made by the builder (from the last
   * committed state, for a persisted Conc; see docs/state.md). A Corps
   * reports each restart as an `InstanceRestarted` event.
   *
   * @since 0.2.0
   */
  readonly onDefect?: "resume" | "restart" | undefined
  /**
   * A persisted state (see the `State` module and docs/state.md): given, the
   * builder receives the instance's `State.Ref`, loaded from the store.
   *
   * @since 0.2.0
   */
  readonly state?: State.Options<Schema.Top> | undefined
  /**
   * Passivates an instance idle this long: its finalizers run (its Scope
   * closes with a normal exit), it leaves memory, and the next call to its
   * key builds it again — from its store, for a persisted Conc (docs/state.md).
   * An instance is idle when no call runs or waits for it, no concurrent
   * method runs and no stream of it is open; it goes between once and 1.5
   * times this after its last call (a sweeper checks every half of it, so the
   * calls themselves read no clock). Each passivation is an
   * `InstancePassivated` event. Absent (or `"Infinity"`): instances live
   * until their Corps closes. Must be a positive duration (else `Corps.layer`
   * fails with `WorkerOptionError`). Works in the caller's runtime and in
   * thread and process Envs; on a cluster it is the default of
   * `cluster.maxIdleTime`. See docs/scaling.md.
   *
   * @example
   * ```ts
   * export const SessionLive = Session.conc(build, { passivateAfter: "10 minutes" })
   * ```
   *
   * @since 0.3.0
   */
  readonly passivateAfter?: Duration.Input | undefined
}

/**
 * The names of the methods of `M` that are not streams (only those can be
 * persisted by the cluster).
 *
 * @since 0.2.0
 * @category models
 */
export type NonStreamMethods<M extends Methods> = {
  readonly [K in keyof M & string]: M[K]["stream"] extends true ? never : K
}[keyof M & string]

/**
 * Delivery options of a Worker placed in a `cluster` Env, given on its
 * implementation: runners and callers import the same module, so they always
 * agree on them (they decide the wire annotations). Ignored in other Envs.
 *
 * By default a method declared `idempotent: true` is persisted and any other
 * is delivered once (see docs/cluster.md).
 *
 * @example
 * ```ts
 * export const LedgerLive = Ledger.conc(build, {
 *   cluster: { persisted: ["close"], volatile: ["ping"], maxIdleTime: "10 minutes" }
 * })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface ClusterOptions<M extends Methods> {
  /** Methods stored in cluster storage before delivery (they survive a runner loss and run once). Streams cannot be. */
  readonly persisted?: ReadonlyArray<NonStreamMethods<M>> | undefined
  /** Idempotent methods to keep volatile: re-sent on a runner loss instead of stored. */
  readonly volatile?: ReadonlyArray<keyof M & string> | undefined
  /** Entities idle this long are passivated (a Conc's state is dropped). Default: the cluster's (1 minute). */
  readonly maxIdleTime?: Duration.Input | undefined
  /** How long a call of an idempotent `volatile` method keeps being re-sent after a loss (default 30 s). */
  readonly retryWithin?: Duration.Input | undefined
}

/**
 * Cluster options of a Func: those of {@link ClusterOptions}, plus the number
 * of slot entities serving it.
 *
 * @since 0.2.0
 * @category models
 */
export interface FuncClusterOptions<M extends Methods> extends ClusterOptions<M> {
  /** The slot entities serving the Func (default 64); callers spread their calls over them. */
  readonly funcSlots?: number | undefined
}

/**
 * Options of a Func (stateless) implementation.
 *
 * @since 0.1.0
 * @category models
 */
export interface FuncOptions {
  /** Calls run at once per replica (default unbounded). */
  readonly concurrency?: number | "unbounded" | undefined
}

/**
 * Options of a Func implementation of a Worker with methods `M`: the
 * {@link FuncOptions} and how its calls travel when it is placed in a
 * `cluster` Env (ignored elsewhere).
 *
 * @since 0.2.0
 * @category models
 */
export interface FuncImplementationOptions<M extends Methods> extends FuncOptions {
  readonly cluster?: FuncClusterOptions<M> | undefined
}
/**
 * An implementation of Worker `Self`, needing `R` from its Corps' context.
 * Give it to `Corps.layer` (or make it a Corps with `Corps.make`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Implementation<in out Self, out R = never> {
  readonly [ImplementationTypeId]: { readonly _Self: (_: Self) => Self; readonly _R: (_: never) => R }
  readonly worker: AnyWorker
  readonly kind: "conc" | "func"
  /** Conc: builds one instance's handlers; Func: builds the handlers once per replica. */
  readonly build: (key: string) => Effect.Effect<Record<string, any>, unknown, any>
  readonly conc: ConcOptions<any>
  readonly func: FuncImplementationOptions<Methods>
  /** Private members, when the implementation is a Corps (see `Corps.make`). */
  readonly members: ReadonlyArray<AnyImplementation>
}

/**
 * Any implementation.
 *
 * @since 0.1.0
 * @category models
 */
export type AnyImplementation = Implementation<any, any>

/**
 * The requirements of the handlers' builder, minus the Scope it is given.
 *
 * @since 0.1.0
 * @category type-level
 */
export type BuildRequirements<B> =
  B extends Effect.Effect<any, any, infer R>
    ? Exclude<R, Scope.Scope>
    : B extends (key: string, ...rest: Array<any>) => Effect.Effect<any, any, infer R>
      ? Exclude<R, Scope.Scope>
      : never

/**
 * The implementations a module's `exports` hold, by Worker name — with
 * `deep`, the private members of Corps too. A Worker exported with two
 * different implementations is ambiguous: the result is then a string that
 * says so. Envs use this to find what to build from the Corps' module.
 *
 * @since 0.1.0
 * @category guards
 */
export const implementationsIn = (
  exports: Readonly<Record<string, unknown>>,
  options?: { readonly deep?: boolean | undefined }
): Map<string, AnyImplementation> | string => {
  const found = new Map<string, AnyImplementation>()
  const add = (impl: AnyImplementation): string | undefined => {
    const seen = found.get(impl.worker.key)
    if (seen !== undefined && seen !== impl) return `two implementations of Worker ${impl.worker.key}`
    found.set(impl.worker.key, impl)
    if (options?.deep === true) {
      for (const member of impl.members) {
        const problem = add(member)
        if (problem !== undefined) return problem
      }
    }
    return undefined
  }
  for (const value of Object.values(exports)) {
    if (!isImplementation(value)) continue
    const problem = add(value)
    if (problem !== undefined) return problem
  }
  return found
}

/** @internal */
export const isImplementation = (u: unknown): u is AnyImplementation =>
  typeof u === "object" && u !== null && ImplementationTypeId in u

// ---------------------------------------------------------------------------
// The Worker class
// ---------------------------------------------------------------------------

/**
 * The static side of a Worker: a service key whose service is a handle to the
 * default instance, with the contract, its RPC group, its Handle Schema,
 * accessors, and constructors of implementations.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerClass<Self, Name extends string, M extends Methods, I extends Schema.Top = never>
  extends Context.ServiceClass<Self, Name, Handle<M>> {
  /** The Schema of the init payload its created instances are built with (see {@link create}); undefined without one. */
  readonly init: [I] extends [never] ? undefined : I
  /** The contract's methods, as declared. */
  readonly methods: M
  /** The contract as an `effect/rpc` group. */
  readonly group: RpcGroup.RpcGroup<RpcsOf<M>>
  /** The Schema of handles to this Worker: use it in payloads to pass handles around. */
  readonly Handle: Schema.Codec<Handle<M>, HandleEncoded>
  /** The handle of instance `key` (created on its first call). */
  instance(key: string): Effect.Effect<Handle<M>, never, Self>
  /**
   * A stateful implementation. `build` runs once per instance key, on the
   * instance's first call, in a Scope closed when the Corps closes; it
   * returns the instance's handlers, which close over its state.
   *
   * With a `state` option the state is persisted (see the `State` module):
   * `build` then takes the key and the instance's `State.Ref`, loaded from
   * the store, and each call's change is committed when the call ends.
   *
   * A builder may fail with a {@link CallError} (a Worker it called was
   * lost, say) and may die: the call that needed the instance then fails
   * with `InstanceStartFailed`, other keys keep being served, and the next
   * call to this key builds it again.
   */
  conc<
    B extends
      | Effect.Effect<Handlers<M>, CallError, any>
      | ((key: string, init: InitOf<I>) => Effect.Effect<Handlers<M>, CallError, any>)
  >(build: B, options?: ConcOptions<M> & { readonly state?: undefined }): Implementation<Self, BuildRequirements<B>>
  conc<S extends Schema.Top, B extends Effect.Effect<Handlers<M>, CallError, any>>(
    build: (key: string, state: State.Ref<S["Type"]>) => B,
    options: ConcOptions<M> & { readonly state: State.Options<S> }
  ): Implementation<Self, BuildRequirements<B>>
  /**
   * Creates a new instance of a contract that declares an `init` (see
   * {@link Service}): its builder runs now, with `init` and the instance's
   * key, in the slot `where` picks (default `"auto"`); the result is its
   * handle. The instance lives until {@link close}d or until the Scope of
   * the `create` closes, whichever comes first (inside a builder, that is
   * the creating instance's own lifetime). Fails before anything is sent
   * with `InvalidInit` (the init does not fit its Schema) or
   * `InvalidLocation` (no such slot), and with `InstanceStartFailed` when
   * the builder fails. See docs/concepts.md, "Creating Workers".
   *
   * With `num`, or `where: "perEnv"`, the result is an array: `num`
   * instances (spread as `"auto"` spreads them), or `num` (default 1) in
   * each slot of the Worker's Env.
   *
   * @since 0.3.0
   */
  create(
    init: InitOf<I>,
    options?: { readonly where?: "auto" | SlotLocation | undefined; readonly num?: undefined }
  ): Effect.Effect<Handle<M>, CreateError, Self | Scope.Scope>
  create(
    init: InitOf<I>,
    options: { readonly where?: Where | undefined; readonly num?: number | undefined }
  ): Effect.Effect<ReadonlyArray<Handle<M>>, CreateError, Self | Scope.Scope>
  /**
   * A stateless implementation: plain handlers, or an Effect that builds them
   * once per replica (in a Scope closed with the Corps).
   */
  func<B extends Handlers<M> | Effect.Effect<Handlers<M>, never, any>>(
    handlers: B,
    options?: FuncImplementationOptions<M>
  ): Implementation<Self, B extends Effect.Effect<any, any, infer R> ? Exclude<R, Scope.Scope> : never>
  /**
   * A new contract with this one's methods plus `more` (a method of `more`
   * with the name of one of these replaces it). The result is a Worker of
   * its own — its own name, handles and implementations — whose handlers
   * objects may reuse this one's handlers for the methods it keeps. Self-
   * handles (see {@link Service}) of this contract become the new one's.
   *
   * @example
   * ```ts
   * class Store extends Worker.Service<Store>()("Store", {
   *   get: { payload: { key: Schema.String }, success: Schema.String }
   * }) {}
   * class AuditedStore extends Store.extend<AuditedStore>()("AuditedStore", {
   *   history: { success: Schema.Array(Schema.String) }
   * }) {}
   * ```
   *
   * @since 0.3.0
   */
  extend<Derived>(): <const Name2 extends string, const More extends Methods>(
    name: Name2,
    more: More | ((self: SelfHandleSchema) => More)
  ) => WorkerClass<Derived, Name2, Extended<M, More>, I> & Accessors<Derived, Extended<M, More>>
}

/**
 * The init value of a contract whose init Schema is `I` (`never` without one).
 *
 * @since 0.3.0
 * @category type-level
 */
export type InitOf<I extends Schema.Top> = [I] extends [never] ? never : I["Type"]

/**
 * A slot of a Worker's placement: the Env's name and the index of one of its
 * threads or processes (`0` for a local Env).
 *
 * @since 0.3.0
 * @category models
 */
export interface SlotLocation {
  readonly env: string
  readonly index: number
}

/**
 * Where {@link WorkerClass.create} puts new instances: `"auto"` (the slot of
 * the Worker's Env holding the fewest live instances created from this
 * runtime, round-robin among equals), `"perEnv"` (one in each slot), or one
 * given slot. In a scaling Env the slots are the `min` ones (never drained).
 * A Worker in a cluster Env takes `"auto"` only: the entity's shard decides,
 * and effect/cluster moves shards between runners, so `"perEnv"` and a slot
 * are `InvalidLocation` (from the caller and from handlers on runners).
 *
 * @since 0.3.0
 * @category models
 */
export type Where = "auto" | "perEnv" | SlotLocation

/**
 * How {@link WorkerClass.create} can fail: the init or the location refused
 * before anything is sent, or a start that failed (`InstanceStartFailed`,
 * or any other {@link CallError} met reaching the instance).
 *
 * @since 0.3.0
 * @category models
 */
export type CreateError = InvalidInit | InvalidLocation | CallError

/**
 * Closes an instance made by {@link WorkerClass.create} before its creator's
 * Scope does: its finalizers run, and its later calls fail with
 * `InstanceClosed`. Closing it again does nothing. Keyed instances cannot be
 * closed (`UnknownMethod`, or `InstanceStartFailed` for a contract with an
 * init).
 *
 * @since 0.3.0
 * @category lifetime
 */
export const close = (handle: {
  readonly worker: string
  readonly key: string
  readonly corps: string
}): Effect.Effect<void, CallError> => closeInstance(handle as unknown as HandleBase)

/**
 * The methods of a contract `M` extended with `More` (see
 * {@link WorkerClass.extend}): those of `More` win.
 *
 * @since 0.3.0
 * @category type-level
 */
export type Extended<M extends Methods, More extends Methods> = {
  readonly [K in keyof M | keyof More]: K extends keyof More ? More[K] : K extends keyof M ? M[K] : never
}

/**
 * Pipe-friendly accessors: `Counter.increment({ by: 1 })` is an Effect that
 * calls the default instance of the `Counter` in context.
 *
 * @since 0.1.0
 * @category models
 */
export type Accessors<Self, M extends Methods> = {
  readonly [K in keyof M]: (
    ...args: CallArgs<M[K], Handle<M>>
  ) => M[K]["stream"] extends true
    ? Stream.Stream<Success<M[K], Handle<M>>, Failure<M[K]> | CallError, Self>
    : Effect.Effect<Success<M[K], Handle<M>>, Failure<M[K]> | CallError, Self>
}

/**
 * Any Worker class.
 *
 * @since 0.1.0
 * @category models
 */
export interface AnyWorker extends Context.Key<any, any> {
  readonly key: string
  readonly methods: Methods
  readonly group: RpcGroup.RpcGroup<any>
  readonly Handle: Schema.Codec<any, HandleEncoded>
  /** @internal */
  readonly HandleClass: HandleClass
}

/**
 * How a handle travels: the Corps that serves it, the Worker and the key.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandleEncoded {
  readonly corps: string
  readonly worker: string
  readonly key: string
}

const reservedNames = new Set([
  "key",
  "methods",
  "group",
  "Handle",
  "HandleClass",
  "instance",
  "conc",
  "func",
  "of",
  "context",
  "use",
  "useSync",
  "name",
  "length",
  "prototype",
  "caller",
  "arguments",
  "pipe",
  "toString",
  "toJSON",
  "worker",
  "corps",
  "entry",
  "target",
  "constructor",
  "stack",
  "extend",
  "create",
  "init"
])

/**
 * Declares a Worker: a named contract of Schema-typed methods that is also an
 * Effect service key. `yield* MyWorker` gives a handle to its default
 * instance.
 *
 * Method names must not clash with the class's own members (`key`,
 * `instance`, `conc`, `func`, `use`, `of`, …): such a contract is a defect at
 * definition time.
 *
 * A contract whose methods take or return handles of its own kind (a chain,
 * a tree, peers) is declared with a callback: it receives `self`, the
 * Schema of this Worker's handles, to use anywhere in its methods.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Worker } from "effect-corps"
 *
 * class Greeter extends Worker.Service<Greeter>()("Greeter", {
 *   greet: { payload: { name: Schema.String }, success: Schema.String }
 * }) {}
 *
 * class Node extends Worker.Service<Node>()("Node", (self) => ({
 *   link: { payload: { next: self } },
 *   length: { success: Schema.Number }
 * })) {}
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const Service =
  <Self>() =>
  <const Name extends string, const M extends Methods, I extends Schema.Top = never>(
    name: Name,
    methods: M | ((self: SelfHandleSchema) => M),
    options?: ServiceOptions<I>
  ): WorkerClass<Self, Name, M, I> & Accessors<Self, M> => {
    // Made before the methods, which may hold it; it finds the handle class only when it decodes.
    let HandleClass: HandleClass
    const fallback = (corps: string) => unreachableEntry(corps, name, HandleClass)
    const HandleSchema = Schema.Struct({
      corps: Schema.String,
      worker: Schema.Literal(name),
      key: Schema.String
    }).pipe(
      Schema.decodeTo(Schema.declare(isHandleOf(name), { title: `${name}.Handle` }), {
        decode: SchemaGetter.transform((e: HandleEncoded) => resolveHandle(e.corps, e.worker, e.key, fallback)) as any,
        encode: SchemaGetter.transform((h: HandleBase) => ({ corps: h.corps, worker: h.worker, key: h.key })) as any
      })
    )
    const makeMethods = typeof methods === "function" ? methods : undefined
    if (makeMethods !== undefined) methods = makeMethods(HandleSchema as any)
    const declared = methods as M
    for (const method of Object.keys(declared)) {
      if (reservedNames.has(method) || method.startsWith("$")) {
        throw new Error(`Worker ${name}: method name "${method}" is reserved; rename it`)
      }
    }
    const initSchema = options?.init
    const initJson = initSchema === undefined ? undefined : initCodec(initSchema)
    // A contract with an init carries its instances' lifetime as two hidden methods, through every transport.
    const served: Methods = initSchema === undefined ? declared : { ...declared, [START]: {}, [CLOSE]: {} }
    const Base = Context.Service<Self, Handle<M>>()(name) as any
    // A Worker no Corps provides is a WorkerNotProvided naming the Corps in context, not `Service not found`.
    withLookup(Base)
    HandleClass = makeHandleClass(name, declared)
    const rpcs = Object.entries(served).map(([method, spec]) =>
      Rpc.make(method, {
        payload: spec.payload as any,
        success: spec.success as any,
        error: spec.error as any,
        stream: spec.stream === true
      })
    )
    class Worker extends Base {
      static readonly methods = served
      static readonly init = initSchema
      // A contract declared with a callback is declared again for the derived one, with the derived self-handle.
      static extend() {
        return (derived: string, more: Methods | ((self: SelfHandleSchema) => Methods)) =>
          Service()(
            derived,
            (self) => ({
              ...(makeMethods === undefined ? declared : makeMethods(self)),
              ...(typeof more === "function" ? more(self) : more)
            }),
            options
          )
      }
      static readonly group = RpcGroup.make(...rpcs)
      static readonly Handle = HandleSchema
      static readonly HandleClass = HandleClass
      static instance(key: string) {
        return Effect.map(Worker as any, (handle: HandleBase) => handle.instance(key))
      }
      static create(init: unknown, options?: { readonly where?: Where; readonly num?: number }) {
        if (initJson === undefined) {
          return Effect.fail(
            new InvalidInit({
              worker: name,
              issue: "the contract declares no init: only contracts with one are created"
            })
          )
        }
        const where = options?.where ?? "auto"
        const many = options?.num !== undefined || where === "perEnv"
        return Effect.flatMap(Worker as any, (handle: HandleBase) =>
          Effect.map(createInstances(handle, initJson, init, where, options?.num ?? 1), (handles) =>
            many ? handles : handles[0]
          )
        )
      }
      static conc(build: any, options?: ConcOptions<M>): AnyImplementation {
        const state = options?.state
        if (state !== undefined) checkStateOptions(name, state)
        if (state !== undefined && initJson !== undefined) {
          throw new Error(`Worker ${name}: an init and a persisted state cannot be combined yet`)
        }
        const given = typeof build === "function" ? build : () => build
        const plain = initJson === undefined ? given : createdBuild(name, initJson, given)
        return makeImplementation(
          Worker as any,
          "conc",
          state === undefined ? plain : persistedBuild(name, new Set(options?.concurrent ?? []), state, plain),
          { conc: options ?? {} }
        )
      }
      static func(handlers: any, options?: FuncImplementationOptions<M>): AnyImplementation {
        if (initJson !== undefined) {
          throw new Error(`Worker ${name}: a contract with an init is implemented with conc (a Func has no instances)`)
        }
        const build: Effect.Effect<any> = Effect.isEffect(handlers) ? (handlers as any) : Effect.succeed(handlers)
        return makeImplementation(Worker as any, "func", () => build, {
          func: (options ?? {}) as FuncImplementationOptions<any>
        })
      }
    }
    for (const [method, spec] of Object.entries(declared)) {
      const accessor = (payload: unknown) => (Worker as any).use((handle: any) => handle[method](payload))
      Object.defineProperty(Worker, method, {
        value: spec.stream ? streamAccessor(Worker, method) : accessor,
        enumerable: false
      })
    }
    registerContract(HandleClass, Worker as any)
    return Worker as any
  }

/**
 * Options of a contract (the third argument of {@link Service}).
 *
 * @since 0.3.0
 * @category models
 */
export interface ServiceOptions<I extends Schema.Top> {
  /**
   * The Schema of the init payload of instances made with `create`: the
   * builder receives the decoded value as its second argument. It travels
   * inside the instance's id (JSON-encoded), so keep it small: a few
   * fields, handles, ids.
   */
  readonly init?: I | undefined
}

const streamAccessor = (worker: any, method: string) => (payload: unknown) =>
  Stream.unwrap(Effect.map(worker, (handle: any) => handle[method](payload)))

/** @internal */
export const makeImplementation = (
  worker: AnyWorker,
  kind: "conc" | "func",
  build: (key: string) => Effect.Effect<Record<string, any>, unknown, any>,
  options: {
    readonly conc?: ConcOptions<any>
    readonly func?: FuncImplementationOptions<Methods>
    readonly members?: ReadonlyArray<AnyImplementation>
  }
): AnyImplementation => ({
  [ImplementationTypeId]: ImplementationTypeId as any,
  worker,
  kind,
  build,
  conc: options.conc ?? {},
  func: options.func ?? {},
  members: options.members ?? []
})

/**
 * Whether a value is a handle (of any Worker).
 *
 * @since 0.1.0
 * @category guards
 */
export const isHandle = (u: unknown): u is Handle<Methods> =>
  typeof u === "object" && u !== null && Symbol.for("effect-corps/Handle") in u

/**
 * Workers as `effect/cluster` entities.
 *
 * A Worker contract becomes an Entity whose type is the Worker's name and whose
 * protocol is the Worker's own RPC group, so a runner and a caller need nothing
 * but the contract to agree on the wire format.
 *
 * - **Conc**: entity id = instance key. The cluster guarantees one live
 *   instance per key across all runners; the handlers are built per entity
 *   (`impl.build(key)`), calls run one at a time, `concurrent` methods are
 *   wrapped in `Rpc.fork`.
 * - **Func**: served by `funcSlots` entities (ids `~0`…`~N-1`) whose handlers
 *   are built once per runner and run with unbounded concurrency (or the
 *   Func's `concurrency` per slot). The caller picks a slot per call, round
 *   robin, so calls spread over the shards and hence over every runner. A
 *   shard-agnostic pool would need a second routing layer beside the
 *   cluster's; slots reuse the cluster's own placement, failover and
 *   rebalancing at no extra cost.
 *
 * Delivery rule, per method (see {@link deliveryOf}):
 *
 * | declared                                  | delivery    | after a runner loss                    |
 * | ----------------------------------------- | ----------- | -------------------------------------- |
 * | in `persisted`, or `idempotent: true`     | `persisted` | stored first, redelivered, no error    |
 * | `idempotent: true` and in `volatile`      | `retry`     | re-sent until re-homed (bounded)       |
 * | otherwise                                 | `once`      | `CallLost`                             |
 *
 * @since 0.1.0
 */
import { Cause, Context, Duration, Effect, Exit, Layer, Schedule, Stream } from "effect"
import { ClusterSchema, Entity } from "effect/cluster"
import type { Sharding } from "effect/cluster/Sharding"
import { Rpc } from "effect/rpc"
import { CallLost, MailboxFull, SerializationError, UnknownMethod, WorkerDefect } from "../CorpsError.ts"
import { codecsOf, type MethodCodec, run } from "../internal/codec.ts"
import type { Target } from "../internal/handle.ts"
import type { AnyImplementation, AnyWorker, Methods } from "../Worker.ts"

/**
 * What the cluster needs of a Worker class: its name, methods and RPC group.
 * (Any `Worker.Service` class fits.)
 *
 * @since 0.1.0
 * @category models
 */
export interface Contract {
  readonly key: string
  readonly methods: Methods
  readonly group: { readonly requests: ReadonlyMap<string, Rpc.AnyWithProps> }
}

/**
 * How the calls of one method travel through the cluster.
 *
 * @since 0.1.0
 * @category models
 */
export type Delivery = "persisted" | "retry" | "once"

/**
 * Per-Worker cluster options, shared by runners and callers (both must use
 * the same `persisted` / `volatile` lists: they decide the wire annotations).
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerOptions {
  /** Methods stored in cluster storage before delivery (survive a runner loss, run once). */
  readonly persisted?: ReadonlyArray<string> | undefined
  /** Idempotent methods to keep volatile: re-sent on loss instead of stored. */
  readonly volatile?: ReadonlyArray<string> | undefined
  /** Entities idle this long are passivated (Conc state is dropped). Default: the cluster's. */
  readonly maxIdleTime?: Duration.Input | undefined
  /** Func only: the slot entities serving the Func (default 64); a caller spreads its calls over this many. */
  readonly funcSlots?: number | undefined
  /** How long a `retry` call keeps re-sending after a loss (default 30 s). */
  readonly retryWithin?: Duration.Input | undefined
}

/**
 * The delivery of each method of `worker`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const deliveryOf = (worker: Contract, options?: WorkerOptions): ReadonlyMap<string, Delivery> => {
  const persisted = new Set(options?.persisted ?? [])
  const volatile = new Set(options?.volatile ?? [])
  const out = new Map<string, Delivery>()
  for (const [method, spec] of Object.entries(worker.methods)) {
    if (persisted.has(method) && volatile.has(method)) {
      throw new Error(`${worker.key}.${method} is listed both as persisted and as volatile`)
    }
    // Streams cannot be persisted by effect/cluster (their chunks are acked, not stored).
    const canPersist = spec.stream !== true
    out.set(
      method,
      canPersist && (persisted.has(method) || (spec.idempotent === true && !volatile.has(method)))
        ? "persisted"
        : spec.idempotent === true
          ? "retry"
          : "once"
    )
  }
  return out
}

/**
 * Each RPC of a Worker's entity carries its {@link Delivery}, so the cluster
 * layers (see `Cluster.ts`) can treat a lost `once` call as lost instead of
 * re-sending it to the entity's next home.
 *
 * @since 0.1.0
 * @category annotations
 */
export const DeliveryAnnotation = Context.Reference<Delivery | undefined>("effect-corps/cluster/Delivery", {
  defaultValue: () => undefined
})

/**
 * The cluster Entity of a Worker: its name and RPC group, with
 * `ClusterSchema.Persisted` on the methods whose delivery is `persisted`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const entityOf = (worker: Contract, options?: WorkerOptions): Entity.Entity<string, Rpc.Any> => {
  const delivery = deliveryOf(worker, options)
  const rpcs = [...worker.group.requests.values()].map((rpc) => {
    const annotated = (rpc as unknown as Rpc.Rpc<string>).annotate(DeliveryAnnotation, delivery.get(rpc._tag))
    return delivery.get(rpc._tag) === "persisted" ? annotated.annotate(ClusterSchema.Persisted, true) : annotated
  })
  return Entity.make(worker.key, rpcs as Array<Rpc.Any>)
}

/**
 * The id of the message a handler is processing, in the handler's context on
 * cluster runners. A persisted message is delivered **at least once**: when a
 * runner dies after running a handler but before its reply was stored, the
 * message is delivered again, with the same id, by the entity's next home.
 * A handler whose effect must happen exactly once records this id with its
 * effect (a unique column, `ON CONFLICT DO NOTHING`) — see docs/cluster.md.
 *
 * @example
 * ```ts
 * const id = yield* Effect.serviceOption(DeliveryId) // Option<string>: None outside a cluster
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class DeliveryId extends Context.Service<DeliveryId, string>()("effect-corps/cluster/DeliveryId") {}

/** Entity ids of a Func's slots: `~` cannot collide with a user's key by accident of naming. */
const slotId = (slot: number): string => `~${slot}`

/**
 * Runs one handler for the cluster: a plain value, an Effect or a Stream.
 * A throw becomes a die, which the cluster (with `disableFatalDefects`)
 * carries back to the caller as a defect instead of replaying the message.
 */
const runHandler = (
  handler: (payload: unknown) => unknown,
  request: EntityRequest,
  stream: boolean,
  persisted: boolean,
  codec: MethodCodec
): unknown => {
  if (stream) {
    return Stream.suspend(() => handler(request.payload) as Stream.Stream<unknown, unknown>)
  }
  return Effect.suspend(() => {
    const result = handler(request.payload)
    const effect = Effect.isEffect(result) ? (result as Effect.Effect<unknown, unknown>) : Effect.succeed(result)
    // Only persisted messages can be redelivered, so only they need an id to de-duplicate by.
    return checkedOutcome(
      persisted ? Effect.provideService(effect, DeliveryId, String(request.requestId)) : effect,
      codec
    )
  })
}

/**
 * A result or an error that its Schema cannot carry becomes a defect naming
 * the SerializationError, here on the runner, as threads and processes do —
 * rather than an opaque cluster encoding failure (or, on the embedded
 * cluster, no check at all). The caller turns it back into the typed error.
 */
const checkedOutcome = (effect: Effect.Effect<unknown, unknown>, codec: MethodCodec) =>
  Effect.matchEffect(effect, {
    onSuccess: (value) =>
      Exit.isSuccess(codec.encodeSuccess(value))
        ? Effect.succeed(value)
        : Effect.die(serializationFailure(codec, "success", "the handler's result does not fit its Schema")),
    onFailure: (error) =>
      codec.isError(error) && Exit.isSuccess(codec.encodeError(error))
        ? Effect.fail(error)
        : Effect.die(serializationFailure(codec, "error", `undeclared or unencodable error: ${describe(error)}`))
  })

const serializationFailure = (codec: MethodCodec, part: "success" | "error", issue: string) =>
  new SerializationError({ worker: codec.worker, method: codec.method, part, issue })

/** What an entity handler receives (the part of `Envelope.Request` used here). */
interface EntityRequest {
  readonly payload: unknown
  readonly requestId: unknown
}

const entityHandlers = (
  impl: AnyImplementation,
  handlers: Record<string, (payload: unknown) => unknown>,
  delivery: ReadonlyMap<string, Delivery>
): Record<string, (request: EntityRequest) => unknown> => {
  const worker = impl.worker
  const codecs = codecsOf(worker as AnyWorker)
  const concurrent = new Set<string>(impl.kind === "conc" ? (impl.conc.concurrent ?? []) : [])
  const out: Record<string, (request: EntityRequest) => unknown> = {}
  for (const [method, spec] of Object.entries(worker.methods as Methods)) {
    const handler = handlers[method]
    if (handler === undefined) {
      out[method] = () => Effect.die(new Error(`${worker.key}: no handler for ${method}`))
      continue
    }
    const stream = spec.stream === true
    const persisted = delivery.get(method) === "persisted"
    out[method] =
      concurrent.has(method) && !stream
        ? (request) =>
            Rpc.fork(
              runHandler(handler, request, false, persisted, codecs.get(method)!) as Effect.Effect<unknown, unknown>
            )
        : (request) => runHandler(handler, request, stream, persisted, codecs.get(method)!)
  }
  return out
}

/**
 * The layer that registers `impl` as an entity on this runner. Conc: one
 * instance per entity id (the key), built on its first message, in the
 * entity's scope. Func: handlers built once per runner, shared by its slots.
 *
 * Defects never replay: `disableFatalDefects` is always on, so a handler that
 * dies fails its own call with `WorkerDefect` and the entity keeps serving.
 *
 * @example
 * ```ts
 * const InMemory = layerEntity(AccountLive).pipe(Layer.provideMerge(Cluster.layerLocal))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEntity = (impl: AnyImplementation, options?: WorkerOptions): Layer.Layer<never, never, Sharding> => {
  const entity = entityOf(impl.worker, options)
  const delivery = deliveryOf(impl.worker, options)
  const common = {
    disableFatalDefects: true,
    ...(options?.maxIdleTime === undefined ? {} : { maxIdleTime: options.maxIdleTime })
  } as const
  if (impl.kind === "conc") {
    // The same default as the local mailbox, so a Conc behaves alike wherever it is placed.
    const capacity = impl.conc.capacity ?? 1024
    return entity.toLayer(
      Effect.gen(function* () {
        const address = yield* Entity.CurrentAddress
        const handlers = (yield* impl.build(address.entityId)) as Record<string, (payload: unknown) => unknown>
        return entityHandlers(impl, handlers, delivery) as any
      }),
      // effect-corps counts the calls waiting; the cluster's mailbox also holds the running one.
      { ...common, mailboxCapacity: capacity + 1 }
    ) as Layer.Layer<never, never, Sharding>
  }
  return Layer.unwrap(
    Effect.map(impl.build("default"), (handlers) =>
      entity.toLayer(entityHandlers(impl, handlers, delivery) as any, {
        ...common,
        concurrency: impl.func.concurrency ?? "unbounded"
      })
    )
  ) as Layer.Layer<never, never, Sharding>
}

/**
 * Turns the outcome of an entity call into what an effect-corps caller
 * expects: the method's own errors pass through; the cluster's and the
 * transport's become {@link CallError}s.
 *
 * @since 0.1.0
 * @category errors
 */
export const toCallError = (
  worker: string,
  key: string,
  method: string,
  cause: Cause.Cause<unknown>,
  capacity = -1
): Cause.Cause<unknown> => {
  if (Cause.hasInterruptsOnly(cause)) return cause
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some") {
    const error = failure.value as { readonly _tag?: unknown; readonly [k: string]: unknown }
    if (isClusterError(error)) {
      switch (error._tag) {
        case "MailboxFull":
          return Cause.fail(new MailboxFull({ worker, key, capacity }))
        default:
          return Cause.fail(new CallLost({ worker, method, env: "cluster", reason: String(error._tag) }))
      }
    }
    if (isTag(error, "RpcClientError")) {
      return Cause.fail(new CallLost({ worker, method, env: "cluster", reason: describe(error) }))
    }
    if (isTag(error, "SchemaError")) {
      return Cause.fail(new SerializationError({ worker, method, part: "payload", issue: describe(error) }))
    }
    return cause
  }
  const die = cause.reasons.find(Cause.isDieReason)
  if (die !== undefined) {
    // A SerializationError raised on the runner (see checkedOutcome), which crossed as a defect.
    const named = die.defect as { readonly name?: unknown; readonly _tag?: unknown; readonly message?: unknown }
    if (
      named !== null &&
      typeof named === "object" &&
      (named._tag === "SerializationError" || named.name === "SerializationError")
    ) {
      const message = String(named.message ?? "")
      const part = /the (payload|success|error) does not fit/.exec(message)?.[1] as
        | "payload"
        | "success"
        | "error"
        | undefined
      return Cause.fail(new SerializationError({ worker, method, part: part ?? "success", issue: message }))
    }
    if (isTag(die.defect, "SchemaError")) {
      return Cause.fail(new SerializationError({ worker, method, part: "payload", issue: describe(die.defect) }))
    }
    if (isClusterError(die.defect)) {
      return Cause.fail(new CallLost({ worker, method, env: "cluster", reason: String(die.defect._tag) }))
    }
    return Cause.fail(new WorkerDefect({ worker, method, defect: die.defect }))
  }
  return cause
}

const isTag = (u: unknown, tag: string): u is { readonly _tag: string } =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === tag

const isClusterError = (u: unknown): u is { readonly _tag: string } =>
  typeof u === "object" && u !== null && "~effect/cluster/ClusterError" in u

const describe = (u: unknown): string => (u instanceof Error ? u.message : String(u))

/**
 * A Conc's mailbox policy, as the caller applies it: under `suspend` (the
 * default) a call that finds the entity's mailbox full waits and tries again;
 * under `fail` it fails with `MailboxFull`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MailboxOptions {
  readonly capacity?: number | undefined
  readonly onFull?: "suspend" | "fail" | undefined
}

/** Retries `effect` on failures matching `when`, with `schedule`, setting the retry up only after a first failure. */
const retryOn = <A>(
  effect: Effect.Effect<A, unknown>,
  when: (error: unknown) => boolean,
  schedule: Schedule.Schedule<unknown, unknown>
): Effect.Effect<A, unknown> =>
  Effect.catch(effect, (error) => (when(error) ? Effect.retry(effect, { while: when, schedule }) : Effect.fail(error)))

/** Spacing of retries into a full mailbox: the cluster's own (`ShardingConfig.sendRetryInterval`). */
const FULL_RETRY = Duration.millis(100)

const isFullCause = (cause: Cause.Cause<unknown>): boolean => {
  const error = Cause.findErrorOption(cause)
  return error._tag === "Some" && error.value instanceof MailboxFull
}

/** Failures worth re-sending for a `retry` method: the call did not reach a live entity. */
const isLoss = (u: unknown): boolean => u instanceof CallLost

/**
 * The caller side: `(key) => Target` for `worker`, through the cluster's
 * entity client. Needs `Sharding` (a runner or a client-only cluster layer).
 * `ClusterEnv` wraps these in ordinary handles; use them directly only to
 * build other Envs.
 *
 * @example
 * ```ts
 * const deposit = Effect.gen(function* () {
 *   const accounts = yield* makeTargets(Account, "conc")
 *   return yield* accounts("alice").call("deposit", { amount: 5 })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTargets = (
  worker: Contract,
  kind: "conc" | "func",
  options?: WorkerOptions,
  mailbox?: MailboxOptions
): Effect.Effect<(key: string) => Target, never, Sharding> =>
  Effect.gen(function* () {
    const entity = entityOf(worker, options)
    const delivery = deliveryOf(worker, options)
    const codecs = codecsOf(worker as AnyWorker)
    const clientFor = (yield* entity.client) as unknown as (id: string) => Record<string, (payload: unknown) => any>
    const retryWithin = Duration.fromInputUnsafe(options?.retryWithin ?? "30 seconds")
    const retry = Schedule.spaced("200 millis").pipe(
      Schedule.while(({ elapsed }) => elapsed < Duration.toMillis(retryWithin))
    )

    const suspendWhenFull = (mailbox?.onFull ?? "suspend") === "suspend"
    const capacity = mailbox?.capacity ?? 1024
    const targetOf = (key: string, pick: () => Record<string, (payload: unknown) => any>): Target => ({
      call(method, payload) {
        const codec = codecs.get(method)
        if (codec === undefined) return Effect.fail(new UnknownMethod({ worker: worker.key, method }))
        // Checked here so a bad payload is a SerializationError before anything is sent or stored.
        const encoded = run(codec.encodePayload, payload, "payload", codec)
        if (Exit.isFailure(encoded)) return encoded
        // One wrapper on the way back: cluster failures become CallErrors, and a full
        // mailbox under `suspend` waits and sends again (the only case set up per failure).
        const send = (): Effect.Effect<unknown, unknown> =>
          Effect.catchCause(
            Effect.suspend(() => pick()[method]!(payload) as Effect.Effect<unknown, unknown>),
            (cause) => {
              const mapped = toCallError(worker.key, key, method, cause, capacity)
              return suspendWhenFull && isFullCause(mapped)
                ? Effect.flatMap(Effect.sleep(FULL_RETRY), send)
                : Effect.failCause(mapped)
            }
          )
        return delivery.get(method) === "retry" ? retryOn(send(), isLoss, retry) : send()
      },
      stream(method, payload) {
        const codec = codecs.get(method)
        if (codec === undefined) return Stream.fail(new UnknownMethod({ worker: worker.key, method }))
        const encoded = run(codec.encodePayload, payload, "payload", codec)
        if (Exit.isFailure(encoded)) return Stream.fromEffect(encoded)
        return Stream.suspend(() => pick()[method]!(payload) as Stream.Stream<unknown, unknown>).pipe(
          Stream.catchCause((cause) => Stream.failCause(toCallError(worker.key, key, method, cause)))
        )
      }
    })

    if (kind === "conc") {
      return (key: string) => {
        const client = clientFor(key)
        return targetOf(key, () => client)
      }
    }
    const slots = Array.from({ length: options?.funcSlots ?? 64 }, (_, i) => clientFor(slotId(i)))
    let next = 0
    const pick = () => {
      const client = slots[next]!
      next = (next + 1) % slots.length
      return client
    }
    const target = targetOf("default", pick)
    return () => target
  })

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
 * The wire: each entity RPC carries the **encoded** side of the method's
 * Schemas. The caller encodes a payload once with the method's codec (which is
 * also its check, before anything is sent or stored) and the cluster only
 * frames it; the runner decodes it once, and encodes the handler's outcome
 * once, the same way (see `serveOutcome`). Before that change both sides ran
 * each value through its Schema twice: once to check it, once in the cluster's
 * serializer.
 */
import { Cause, Context, Duration, Effect, Exit, Layer, Schedule, Schema, Scope, Semaphore, Stream } from "effect"
import { ClusterSchema, Entity } from "effect/cluster"
import type { Sharding } from "effect/cluster/Sharding"
import { Rpc } from "effect/rpc"
import {
  type CallError,
  CallLost,
  DownstreamFailed,
  isCallError,
  MailboxFull,
  SerializationError,
  UnknownMethod,
  WorkerDefect
} from "../../CorpsError.ts"
import { codecsOf, decodeCallFailure, encodeCallFailure, type MethodCodec, run } from "../../internal/codec.ts"
import type { Target } from "../../internal/handle.ts"
import { type AnyHandler, isEffectResult, markOwn, startFailure, takeOwn } from "../../internal/invoke.ts"
import { messageOf } from "../../internal/message.ts"
import { passivateAfterMillis } from "../../internal/passivation.ts"
import type { AnyImplementation, AnyWorker, FuncClusterOptions, Methods } from "../../Worker.ts"
import { DeliveryId } from "../DeliveryId.ts"

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
 * A Worker's cluster options, as given on its implementation (`{ cluster: … }`
 * of `Worker.conc` / `Worker.func`). Runners and callers read them from the
 * same implementation, so they agree on the wire annotations.
 */
export type WorkerOptions = FuncClusterOptions<Methods>

/** The cluster options given on an implementation. */
export const clusterOptionsOf = (impl: AnyImplementation): WorkerOptions | undefined =>
  impl.kind === "conc" ? impl.conc.cluster : impl.func.cluster

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
    const spec = worker.methods[rpc._tag]!
    // The encoded side only: values are encoded (and checked) once, by the method's codec.
    const wire = Rpc.make(rpc._tag, {
      payload: Schema.toEncoded(rpc.payloadSchema as Schema.Top),
      success: Schema.toEncoded((spec.success ?? Schema.Void) as Schema.Top),
      error: Schema.toEncoded((spec.error ?? Schema.Never) as Schema.Top),
      stream: spec.stream === true
    }) as unknown as Rpc.Rpc<string>
    const annotated = wire.annotate(DeliveryAnnotation, delivery.get(rpc._tag))
    return delivery.get(rpc._tag) === "persisted" ? annotated.annotate(ClusterSchema.Persisted, true) : annotated
  })
  return Entity.make(worker.key, rpcs as Array<Rpc.Any>)
}

/** Entity ids of a Func's slots: `~` cannot collide with a user's key by accident of naming. */
const slotId = (slot: number): string => `~${slot}`

/**
 * Where `value` holds a function or a symbol (a path such as `.f` or `[2].g`),
 * or undefined when it is plain data. A permissive Schema (`Schema.Unknown`,
 * `Schema.Any`) lets them through its encoding, the cluster's serializer then
 * drops them silently or fails with an opaque `MalformedMessage`, where a
 * thread's structured clone refuses them: so the cluster path refuses them
 * too, with a SerializationError.
 */
const unserializable = (value: unknown): string | undefined => walk(value, "", undefined)

const walk = (value: unknown, path: string, seen: Set<object> | undefined): string | undefined => {
  switch (typeof value) {
    case "function":
      return `${path || "the value"} is a function`
    case "symbol":
      return `${path || "the value"} is a symbol`
    case "object": {
      if (value === null) return undefined
      const seenHere = seen ?? new Set<object>()
      if (seenHere.has(value)) return undefined
      seenHere.add(value)
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const found = walk(value[i], `${path}[${i}]`, seenHere)
          if (found !== undefined) return found
        }
        return undefined
      }
      const proto = Object.getPrototypeOf(value)
      // Dates, byte arrays and the like are the serializer's business; only plain records are walked.
      if (proto !== Object.prototype && proto !== null) return undefined
      for (const key in value) {
        const found = walk((value as Record<string, unknown>)[key], `${path}.${key}`, seenHere)
        if (found !== undefined) return found
      }
      if (Object.getOwnPropertySymbols(value).length > 0) return `${path || "the value"} has a symbol key`
      return undefined
    }
    default:
      return undefined
  }
}

/** Encodes `value` with `codec` and checks that the result is plain data: once, on the side that has the value. */
export const encodeChecked = (
  codec: MethodCodec,
  part: "payload" | "success" | "error",
  value: unknown
): Exit.Exit<unknown, SerializationError> => {
  const encoded = run(
    part === "payload" ? codec.encodePayload : part === "success" ? codec.encodeSuccess : codec.encodeError,
    value,
    part,
    codec
  )
  if (Exit.isFailure(encoded)) return encoded
  const problem = unserializable(encoded.value)
  return problem === undefined
    ? encoded
    : Exit.fail(new SerializationError({ worker: codec.worker, method: codec.method, part, issue: problem }))
}

/**
 * Runs one handler for the cluster: decodes the payload, runs the handler
 * (a plain value, an Effect or a Stream) and encodes its outcome. A throw
 * becomes a die, which the cluster (with `disableFatalDefects`) carries back
 * to the caller as a defect instead of replaying the message.
 */
const runHandler = (
  handler: (payload: unknown) => unknown,
  request: EntityRequest,
  stream: boolean,
  persisted: boolean,
  codec: MethodCodec
): unknown => {
  const decoded = run(codec.decodePayload, request.payload, "payload", codec)
  if (stream) {
    if (Exit.isFailure(decoded)) return Stream.die(Cause.squash(decoded.cause))
    return Stream.suspend(() => handler(decoded.value) as Stream.Stream<unknown, unknown>).pipe(
      Stream.mapEffect((value) => Effect.orDie(encodeChecked(codec, "success", value))),
      Stream.catchCause((cause) => {
        const error = Cause.findErrorOption(cause)
        return error._tag === "Some" ? Stream.fromEffect(serveError(codec, error.value)) : Stream.failCause(cause)
      })
    )
  }
  if (Exit.isFailure(decoded)) return Effect.die(Cause.squash(decoded.cause))
  return Effect.suspend(() => {
    const result = handler(decoded.value)
    const effect = isEffectResult(result) ? (result as Effect.Effect<unknown, unknown>) : Effect.succeed(result)
    // Only persisted messages can be redelivered, so only they need an id to de-duplicate by.
    return serveOutcome(
      persisted ? Effect.provideService(effect, DeliveryId, String(request.requestId)) : effect,
      codec
    )
  })
}

/**
 * The handler's outcome, encoded for the wire. A result or an error that its
 * Schema cannot carry becomes a defect naming the SerializationError, here on
 * the runner, as threads and processes do; the caller turns it back into the
 * typed error.
 */
const serveOutcome = (effect: Effect.Effect<unknown, unknown>, codec: MethodCodec) =>
  Effect.matchCauseEffect(effect, {
    onSuccess: (value) => {
      const encoded = encodeChecked(codec, "success", value)
      return Exit.isSuccess(encoded) ? encoded : Effect.die(Cause.squash(encoded.cause))
    },
    onFailure: (cause) => {
      const error = Cause.findErrorOption(cause)
      if (error._tag === "Some") return serveError(codec, error.value)
      const die = cause.reasons.find(Cause.isDieReason)
      // A handler's defect crosses whole (name, message and stack), not as the cluster's Error encoding.
      if (die === undefined || Cause.hasInterrupts(cause)) return Effect.failCause(cause)
      return Effect.die(carry(WorkerDefect.fromDefect(codec.worker, codec.method, die.defect)))
    }
  })

/**
 * One of effect-corps' own errors on its way through the cluster, which
 * carries only declared errors and defects: a defect holding the error
 * encoded with its Schema, turned back into it by {@link toCallError}.
 */
const CARRIED = "effect-corps/CallError"

const carry = (error: CallError): { readonly _tag: typeof CARRIED; readonly error: unknown } => {
  const encoded = encodeCallFailure(error)
  return { _tag: CARRIED, error: encoded._tag === "Failure" ? encoded.error[1] : null }
}

const serveError = (codec: MethodCodec, error: unknown): Effect.Effect<never, unknown> => {
  // A CallError from a call the handler made and let through: its caller learns where it happened.
  // The instance's own (a start failure, a closed instance) crosses as it is.
  if (isCallError(error)) {
    return Effect.die(carry(takeOwn(error) ? error : DownstreamFailed.wrap(codec.worker, codec.method, error)))
  }
  if (!codec.isError(error)) {
    return Effect.die(serializationFailure(codec, "error", `undeclared or unencodable error: ${messageOf(error)}`))
  }
  const encoded = encodeChecked(codec, "error", error)
  return Exit.isSuccess(encoded) ? Effect.fail(encoded.value) : Effect.die(Cause.squash(encoded.cause))
}

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
    const codec = codecs.get(method)!
    out[method] =
      concurrent.has(method) && !stream
        ? (request) =>
            Rpc.fork(runHandler(handler, request, false, persisted, codec) as Effect.Effect<unknown, unknown>)
        : (request) => runHandler(handler, request, stream, persisted, codec)
  }
  return out
}

/** One build of a Conc instance: its handlers, and the scope their finalizers live in. */
interface Incarnation {
  readonly scope: Scope.Closeable
  readonly handlers: Record<string, AnyHandler>
}

/**
 * The handlers of a Conc entity, whose instance is built by the first call
 * that needs it rather than when the entity starts. effect/cluster retries
 * a failing entity construction for ever (the caller hangs, and the runner
 * logs the failure again and again); built here instead, a failing builder
 * fails that call with `InstanceStartFailed` (or `InstanceClosed` for a
 * created instance closed on this runner), as in every other Env, and the
 * next call tries again. Each build lives in a scope of its own inside the
 * entity's. The entity's mailbox runs calls one at a time, but methods
 * declared `concurrent` run beside it (`Rpc.fork`): a lock makes building
 * (and, under `onDefect: "restart"`, retiring) one step each, so concurrent
 * first calls share one build.
 *
 * Under `onDefect: "restart"` a handler (or a stream) that dies closes its
 * incarnation (its finalizers run) and the next message builds a fresh one;
 * a defect retires only the incarnation its call ran on (never a newer one).
 * (effect/cluster's own restart replays the message that died, forever:
 * `disableFatalDefects` stays on.)
 */
const instanceHandlers = (
  impl: AnyImplementation,
  key: string
): Effect.Effect<Record<string, (payload: unknown) => unknown>, never, any> =>
  Effect.gen(function* () {
    const worker = impl.worker.key
    const restart = impl.kind === "conc" && impl.conc.onDefect === "restart"
    const entityScope = yield* Effect.scope
    const context = yield* Effect.context<any>()
    const lock = yield* Semaphore.make(1)
    let current: Incarnation | undefined
    const build = Effect.flatMap(Scope.fork(entityScope), (scope) =>
      (
        Effect.provideContext(impl.build(key), Context.add(context, Scope.Scope, scope)) as Effect.Effect<
          Record<string, AnyHandler>,
          unknown
        >
      ).pipe(
        // An interrupted or failed build keeps nothing: its finalizers run now.
        Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))),
        Effect.map((handlers): Incarnation => {
          current = { scope, handlers }
          return current
        })
      )
    )
    const incarnation: Effect.Effect<Incarnation, unknown> = Effect.suspend(() =>
      current !== undefined
        ? Effect.succeed(current)
        : Semaphore.withPermits(
            lock,
            1
          )(Effect.suspend(() => (current !== undefined ? Effect.succeed(current) : build))).pipe(
            Effect.catchCause((cause) => {
              if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
              // The instance's own failure: it crosses back as it is (see serveError), not as DownstreamFailed.
              return Effect.fail(markOwn(startFailure(worker, key, cause)))
            })
          )
    )
    const retire = (retiring: Incarnation, cause: Cause.Cause<unknown>) => {
      const die = cause.reasons.find(Cause.isDieReason)
      if (die === undefined || Cause.hasInterrupts(cause)) return Effect.void
      return Semaphore.withPermits(
        lock,
        1
      )(
        Effect.suspend(() => {
          if (current !== retiring) return Effect.void
          current = undefined
          return Effect.andThen(
            Scope.close(retiring.scope, Exit.die(die.defect)),
            Effect.logWarning(
              `effect-corps: ${worker}[${key}] rebuilt: a handler died; finalizers ran, the next call builds a fresh instance`
            )
          )
        })
      )
    }
    /** The handler's result: a plain value, an Effect or a Stream (a throw is caught by the caller, runHandler). */
    const call = (running: Incarnation, method: string, payload: unknown): unknown => {
      const handler = running.handlers[method]
      return handler === undefined ? Effect.die(new Error(`${worker}: no handler for ${method}`)) : handler(payload)
    }
    const out: Record<string, (payload: unknown) => unknown> = {}
    for (const [method, spec] of Object.entries(impl.worker.methods as Methods)) {
      if (spec.stream === true) {
        out[method] = (payload) =>
          Stream.unwrap(
            Effect.map(incarnation, (running) => {
              const stream = Stream.suspend(() => {
                const result = call(running, method, payload)
                // An Effect instead of a Stream (a closed created instance's refusal): the stream fails with
                // it, as the other Envs' streams do (their stream call runs the handler as an Effect).
                return isEffectResult(result)
                  ? Stream.unwrap(result as Effect.Effect<Stream.Stream<unknown, unknown>, unknown>)
                  : (result as Stream.Stream<unknown, unknown>)
              })
              return restart ? Stream.onError(stream, (cause) => retire(running, cause)) : stream
            })
          )
        continue
      }
      // Suspended: a handler that throws dies inside the `onError` that retires its incarnation.
      const run = (running: Incarnation, payload: unknown) =>
        Effect.suspend(() => {
          const result = call(running, method, payload)
          return (isEffectResult(result) ? result : Effect.succeed(result)) as Effect.Effect<unknown, unknown>
        })
      out[method] = restart
        ? (payload) =>
            Effect.flatMap(incarnation, (running) =>
              run(running, payload).pipe(Effect.onError((cause) => retire(running, cause)))
            )
        : // Once built, a call reaches its handler directly (a synchronous handler stays synchronous).
          (payload) =>
            current !== undefined
              ? call(current, method, payload)
              : Effect.flatMap(incarnation, (running) => run(running, payload))
    }
    return out
  })

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
export const layerEntity = (
  impl: AnyImplementation,
  options: WorkerOptions | undefined = clusterOptionsOf(impl)
): Layer.Layer<never, never, Sharding> => {
  const entity = entityOf(impl.worker, options)
  const delivery = deliveryOf(impl.worker, options)
  // A Conc's `passivateAfter` is its entities' idle time unless the cluster options say otherwise.
  const passivateAfter = impl.kind === "conc" ? passivateAfterMillis(impl.conc.passivateAfter) : undefined
  const maxIdleTime = options?.maxIdleTime ?? (typeof passivateAfter === "number" ? passivateAfter : undefined)
  const common = {
    disableFatalDefects: true,
    ...(maxIdleTime === undefined ? {} : { maxIdleTime })
  } as const
  if (impl.kind === "conc") {
    // The same default as the local mailbox, so a Conc behaves alike wherever it is placed.
    const capacity = impl.conc.capacity ?? 1024
    return entity.toLayer(
      Effect.gen(function* () {
        const address = yield* Entity.CurrentAddress
        // Never fails: the instance is built by its first call (see instanceHandlers).
        const handlers = yield* instanceHandlers(impl, address.entityId)
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
 * Turns the failure of an entity call into what an effect-corps caller
 * expects: the method's own errors are decoded (they travel encoded); the
 * cluster's and the transport's become {@link CallError}s.
 */
export const toCallError = (
  worker: string,
  key: string,
  method: string,
  cause: Cause.Cause<unknown>,
  capacity = -1,
  codec?: MethodCodec
): Cause.Cause<unknown> => {
  if (Cause.hasInterruptsOnly(cause)) return cause
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some") {
    const error = failure.value as { readonly _tag?: unknown; readonly [k: string]: unknown }
    if (isClusterError(error)) {
      switch (error._tag) {
        case "MailboxFull":
          return Cause.fail(new MailboxFull({ worker, key, capacity }))
        // A value the cluster's serializer refused: a payload that got past its Schema (the caller
        // checks it first, so this is rare), or a reply this side cannot read.
        case "MalformedMessage":
          return Cause.fail(
            new SerializationError({ worker, method, part: "payload", issue: describeMalformed(error) })
          )
        default:
          return Cause.fail(new CallLost({ worker, method, env: "cluster", reason: String(error._tag) }))
      }
    }
    if (isTag(error, "RpcClientError")) {
      return Cause.fail(new CallLost({ worker, method, env: "cluster", reason: messageOf(error) }))
    }
    if (isTag(error, "SchemaError")) {
      return Cause.fail(new SerializationError({ worker, method, part: "payload", issue: messageOf(error) }))
    }
    if (codec !== undefined) {
      // The method's declared error, encoded on the runner.
      const decoded = run(codec.decodeError, error, "error", codec)
      return Exit.isSuccess(decoded) ? Cause.fail(decoded.value) : decoded.cause
    }
    return cause
  }
  const die = cause.reasons.find(Cause.isDieReason)
  if (die !== undefined) {
    // A SerializationError raised on the runner (see serveOutcome), which crossed as a defect.
    const named = die.defect as {
      readonly name?: unknown
      readonly _tag?: unknown
      readonly message?: unknown
      readonly error?: unknown
    }
    if (named !== null && typeof named === "object" && named._tag === CARRIED) {
      return Cause.fail(decodeCallFailure(named.error))
    }
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
      return Cause.fail(new SerializationError({ worker, method, part: "payload", issue: messageOf(die.defect) }))
    }
    if (isClusterError(die.defect)) {
      if (die.defect._tag === "MalformedMessage") {
        return Cause.fail(
          new SerializationError({ worker, method, part: "success", issue: describeMalformed(die.defect) })
        )
      }
      return Cause.fail(new CallLost({ worker, method, env: "cluster", reason: String(die.defect._tag) }))
    }
    return Cause.fail(WorkerDefect.fromDefect(worker, method, die.defect))
  }
  return cause
}

const describeMalformed = (error: { readonly [k: string]: unknown }): string => {
  const cause = error.cause
  return cause instanceof Error && cause.message !== "" ? cause.message : "the cluster could not serialize it"
}

const isTag = (u: unknown, tag: string): u is { readonly _tag: string } =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === tag

const isClusterError = (u: unknown): u is { readonly _tag: string } =>
  typeof u === "object" && u !== null && "~effect/cluster/ClusterError" in u

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
 * `ClusterEnv` wraps these in ordinary handles.
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
        // Encoded once, here: the check before anything is sent or stored, and what the wire carries.
        const encoded = encodeChecked(codec, "payload", payload)
        if (Exit.isFailure(encoded)) return encoded
        const decodeSuccess = (value: unknown) => run(codec.decodeSuccess, value, "success", codec)
        // One wrapper on the way back: cluster failures become CallErrors, and a full
        // mailbox under `suspend` waits and sends again (the only case set up per failure).
        const send = (): Effect.Effect<unknown, unknown> =>
          Effect.matchCauseEffect(
            Effect.suspend(() => pick()[method]!(encoded.value) as Effect.Effect<unknown, unknown>),
            {
              onSuccess: decodeSuccess,
              onFailure: (cause) => {
                const mapped = toCallError(worker.key, key, method, cause, capacity, codec)
                return suspendWhenFull && isFullCause(mapped)
                  ? Effect.flatMap(Effect.sleep(FULL_RETRY), send)
                  : Effect.failCause(mapped)
              }
            }
          )
        return delivery.get(method) === "retry" ? retryOn(send(), isLoss, retry) : send()
      },
      stream(method, payload) {
        const codec = codecs.get(method)
        if (codec === undefined) return Stream.fail(new UnknownMethod({ worker: worker.key, method }))
        const encoded = encodeChecked(codec, "payload", payload)
        if (Exit.isFailure(encoded)) return Stream.fromEffect(encoded)
        return Stream.suspend(() => pick()[method]!(encoded.value) as Stream.Stream<unknown, unknown>).pipe(
          Stream.catchCause((cause) => Stream.failCause(toCallError(worker.key, key, method, cause, -1, codec))),
          Stream.mapEffect((value) => run(codec.decodeSuccess, value, "success", codec))
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

/**
 * The Targets of an implementation's Worker, with the cluster and mailbox
 * options given on the implementation.
 */
export const targetsOf = (impl: AnyImplementation): Effect.Effect<(key: string) => Target, never, Sharding> =>
  makeTargets(impl.worker, impl.kind, clusterOptionsOf(impl), impl.kind === "conc" ? impl.conc : undefined)

/**
 * The two halves of a call that crosses an Env boundary, with no transport in
 * between: the caller's Target encodes the payload and decodes the reply
 * (`remoteTarget`), the Env decodes, runs the handler and encodes the outcome
 * (`Dispatcher`).
 *
 * The local serialization check runs exactly these halves back to back, so
 * what passes it is known to cross a thread, a process or a host.
 */
import { Cause, type Clock, Context, Effect, Effectable, Exit, Option, Scope, Stream, Tracer } from "effect"
import * as Pull from "effect/Pull"
import { UnknownMethod, UnknownWorker } from "../CorpsError.ts"
import type { AnyWorker } from "../Worker.ts"
import { codecsOf, decodeFailure, encodeCallFailure, encodeFailure, type MethodCodec, run } from "./codec.ts"
import { LocalFunc } from "./func.ts"
import type { Target } from "./handle.ts"
import { defectError, invokeHandler } from "./invoke.ts"
import { type CallSeries, now } from "./recorder.ts"
import * as Wire from "./wire.ts"

/**
 * Sends a request and arranges for `resume` to be called with the reply:
 * the register function of an `Effect.callback`, so a call costs one
 * suspension. Returns what to run if the caller is interrupted.
 */
export type Register = (
  request: Wire.Call,
  resume: (reply: Effect.Effect<Wire.Exit, unknown>) => void
) => Effect.Effect<void> | undefined

/** The buffers of the typed arrays in an encoded value (a few levels deep), each once. */
const buffersOf = (value: unknown, found: Set<ArrayBuffer> = new Set(), depth = 0): Set<ArrayBuffer> => {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer) found.add(value.buffer)
  } else if (depth < 4 && typeof value === "object" && value !== null) {
    for (const item of Array.isArray(value) ? value : Object.values(value)) buffersOf(item, found, depth + 1)
  }
  return found
}

/** What an Env serves: for each Worker, its contract and the Target of a key. */
export interface Served {
  readonly worker: AnyWorker
  target(key: string): Target
}

/**
 * The pseudo-Worker of stream calls: `open` starts a stream and answers its
 * id, `pull` answers its next chunk (`[0, values]`) or its end (`[1]`),
 * `close` stops it. A stream crosses an Env as a sequence of pulls, so the
 * consumer's pace is the producer's (backpressure), over any transport.
 */
export const STREAM = "$stream"

interface OpenStream {
  readonly pull: Pull.Pull<ReadonlyArray<unknown>, unknown>
  readonly scope: Scope.Closeable
  readonly codec: MethodCodec
}

/** The Env side: decodes a request, runs it, encodes how it ended. Never fails. */
export class Dispatcher {
  readonly corps: string
  readonly served: ReadonlyMap<string, Served>
  /** Streams opened by callers and not yet ended. */
  readonly streams: StreamState = { open: new Map(), next: 0 }
  constructor(corps: string, served: ReadonlyMap<string, Served>) {
    this.corps = corps
    this.served = served
  }

  /**
   * Set when monitoring is on in this runtime: handlers' log lines are
   * annotated with these (Corps, Env) plus their Worker and method.
   */
  logAnnotations: Readonly<Record<string, string>> | undefined = undefined
  /** The annotations of each `Worker.method`, made once. */
  readonly annotationsOf = new Map<string, Readonly<Record<string, string>>>()
  /** The attributes of each `Worker.method`'s server span, made once. */
  readonly spanAttributesOf = new Map<string, Readonly<Record<string, string>>>()
  /**
   * Set in an Env whose caller traces (src/node/envMain.ts): its Tracer and
   * Clock, read once, so a traced call to a synchronous handler opens and
   * ends its span with no fiber (as an untraced call needs none).
   */
  spans: { readonly tracer: Tracer.Tracer; readonly clock: Clock.Clock } | undefined = undefined
  /**
   * Whether a traced call this runtime forwards to yet another Env gets a
   * span of its own here (tracing's `clientSpans`); else the caller's span
   * is passed on as it came.
   */
  forwardSpans = true

  dispatch(request: Wire.Call): Effect.Effect<Wire.Exit> {
    if (request.worker === STREAM) return streamCall(this, request.method, request.payload)
    if (request.trace !== undefined) return traced(this, request, request.trace)
    const call = resolve(this, request)
    if (!("served" in call)) return Exit.succeed(call)
    const { served, codec, payload } = call
    const outcome = runNow(served.target(request.key), request.method, payload, request.worker)
    // A synchronous handler has already answered: reply with no fiber at all (the transport skips one for an Exit).
    // (It logged nothing through Effect either: a log line is an Effect, so there is nothing to annotate.)
    if (Exit.isExit(outcome)) return Exit.succeed(encodeExit(codec, outcome, request))
    return reply(codec, request, annotate(this, request, outcome))
  }
}

/** The encoded answer to `request` once the handler's Effect ends. */
const reply = (codec: MethodCodec, request: Wire.Call, outcome: Effect.Effect<unknown, unknown>) =>
  Effect.matchCause(outcome, {
    onSuccess: (value) => encodeExit(codec, Exit.succeed(value), request),
    onFailure: (cause) => encodeExit(codec, Exit.failCause(cause), request)
  })

/** Annotates a handler's log lines with its Corps, Env, Worker and method, when monitoring asks for it. */
const annotate = <A, E>(self: Dispatcher, request: Wire.Call, effect: Effect.Effect<A, E>): Effect.Effect<A, E> => {
  const base = self.logAnnotations
  if (base === undefined) return effect
  const id = `${request.worker}.${request.method}`
  let annotations = self.annotationsOf.get(id)
  if (annotations === undefined) {
    annotations = { ...base, worker: request.worker, method: request.method }
    self.annotationsOf.set(id, annotations)
  }
  return Effect.annotateLogs(effect, annotations)
}

/**
 * A call that carries its caller's span (tracing is on): run under a span
 * named `Worker.method` whose parent is the caller's. A Worker reached from
 * here in yet another Env gets this span as its caller's.
 */
const traced = (self: Dispatcher, request: Wire.Call, trace: Wire.TraceContext): Effect.Effect<Wire.Exit> => {
  const call = resolve(self, request)
  if (!("served" in call)) return Exit.succeed(call)
  const { served, codec, payload } = call
  const target = served.target(request.key)
  const id = `${request.worker}.${request.method}`
  let attributes = self.spanAttributesOf.get(id)
  if (attributes === undefined) {
    attributes = { "corps.worker": request.worker, "corps.method": request.method, ...self.logAnnotations }
    self.spanAttributesOf.set(id, attributes)
  }
  const root = Wire.isRoot(trace)
  if (target.callTraced !== undefined && !self.forwardSpans) {
    // Forwarded on to the Env that runs it, which makes the call's one span under the caller's.
    return reply(codec, request, target.callTraced(request.method, payload, trace))
  }
  const spans = self.spans
  if (spans !== undefined && target.callTraced === undefined) {
    // The span made as `Effect.useSpan` makes it, from the Tracer and Clock this runtime was given.
    const span = spans.tracer.span({
      name: id,
      parent: root ? Option.none() : Option.some(Tracer.externalSpan(trace)),
      annotations: Context.empty(),
      links: [],
      startTime: spans.clock.currentTimeNanosUnsafe(),
      kind: "server",
      root,
      sampled: trace.sampled
    })
    for (const key in attributes) span.attribute(key, attributes[key])
    const outcome = runNow(target, request.method, payload, request.worker)
    if (Exit.isExit(outcome)) {
      span.end(spans.clock.currentTimeNanosUnsafe(), outcome)
      return Exit.succeed(encodeExit(codec, outcome, request))
    }
    return reply(
      codec,
      request,
      Effect.onExit(Effect.withParentSpan(annotate(self, request, outcome), span, noStack), (exit) =>
        Effect.sync(() => span.end(spans.clock.currentTimeNanosUnsafe(), exit))
      )
    )
  }
  const options: Tracer.SpanOptionsNoTrace & { parent?: Tracer.AnySpan } = root
    ? { root: true, sampled: trace.sampled, kind: "server", attributes }
    : { parent: Tracer.externalSpan(trace), kind: "server", attributes }
  return Effect.useSpan(id, options, (span) => {
    const outcome =
      target.callTraced !== undefined
        ? target.callTraced(request.method, payload, {
            traceId: span.traceId,
            spanId: span.spanId,
            sampled: span.sampled
          })
        : Effect.suspend(() => runNow(target, request.method, payload, request.worker))
    return reply(codec, request, Effect.withParentSpan(annotate(self, request, outcome), span, noStack))
  })
}

const noStack = { captureStackTrace: false } as const

/**
 * Runs a call that has arrived (so it may be invoked at once): a Func's
 * handler is called directly, and a synchronous one gives an Exit.
 */
const runNow = (target: Target, method: string, payload: unknown, worker: string): Effect.Effect<unknown, unknown> => {
  if (target instanceof LocalFunc && target.semaphore === undefined && !target.closed) {
    const handler = target.handlers[method]
    if (handler !== undefined) return invokeHandler(handler, payload, worker, method)
  }
  return target.call(method, payload)
}

/** How a call ended, encoded for the wire. */
const encodeExit = (codec: MethodCodec, exit: Exit.Exit<unknown, unknown>, request: Wire.Call): Wire.Exit => {
  if (Exit.isSuccess(exit)) {
    const encoded = run(codec.encodeSuccess, exit.value, "success", codec)
    return Exit.isSuccess(encoded)
      ? { _tag: "Success", value: encoded.value }
      : encodeCallFailure(Option.getOrUndefined(Exit.findErrorOption(encoded)))
  }
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") return encodeFailure(codec, error.value)
  if (Cause.hasInterruptsOnly(exit.cause)) return { _tag: "Interrupted" }
  return encodeCallFailure(defectError(request.worker, request.method, Cause.squash(exit.cause)))
}

interface StreamState {
  readonly open: Map<number, OpenStream>
  next: number
}

/** The Worker, the method's codec and the decoded payload of a request, or the encoded error that stops it. */
const resolve = (
  self: Dispatcher,
  request: Wire.Call
): { readonly served: Served; readonly codec: MethodCodec; readonly payload: unknown } | Wire.Exit => {
  const served = self.served.get(request.worker)
  if (served === undefined) return encodeCallFailure(new UnknownWorker({ worker: request.worker, corps: self.corps }))
  const codec = codecsOf(served.worker).get(request.method)
  if (codec === undefined)
    return encodeCallFailure(new UnknownMethod({ worker: request.worker, method: request.method }))
  const payload = run(codec.decodePayload, request.payload, "payload", codec)
  if (Exit.isFailure(payload)) return encodeCallFailure(Option.getOrUndefined(Exit.findErrorOption(payload)))
  return { served, codec, payload: payload.value }
}

/** Stream calls: open, pull, close (see {@link STREAM}). */
const streamCall = (self: Dispatcher, method: string, payload: unknown): Effect.Effect<Wire.Exit> => {
  switch (method) {
    case "open": {
      const open = payload as Wire.Call
      const call = resolve(self, open)
      if (!("served" in call)) return Exit.succeed(call)
      const { served, codec } = call
      const scope = Scope.makeUnsafe()
      return Effect.map(
        Scope.provide(Stream.toPull(served.target(open.key).stream(open.method, call.payload)), scope),
        (pull): Wire.Exit => {
          const id = ++self.streams.next
          self.streams.open.set(id, { pull, scope, codec })
          return { _tag: "Success", value: id }
        }
      )
    }
    case "pull": {
      const id = payload as number
      const open = self.streams.open.get(id)
      if (open === undefined) return Effect.succeed({ _tag: "Success", value: [1] })
      const end = (exit: Wire.Exit) => {
        self.streams.open.delete(id)
        return Effect.as(Scope.close(open.scope, Exit.void), exit)
      }
      return Effect.matchCauseEffect(open.pull, {
        onSuccess: (chunk) => {
          const values: Array<unknown> = []
          for (const value of chunk) {
            const encoded = run(open.codec.encodeSuccess, value, "success", open.codec)
            if (Exit.isFailure(encoded))
              return end(encodeCallFailure(Option.getOrUndefined(Exit.findErrorOption(encoded))))
            values.push(encoded.value)
          }
          return Effect.succeed<Wire.Exit>({ _tag: "Success", value: [0, values] })
        },
        onFailure: (cause) => {
          if (Pull.isDoneCause(cause)) return end({ _tag: "Success", value: [1] })
          const error = Cause.findErrorOption(cause)
          if (error._tag === "Some") return end(encodeFailure(open.codec, error.value))
          if (Cause.hasInterruptsOnly(cause)) return end({ _tag: "Interrupted" })
          return end(encodeCallFailure(defectError(open.codec.worker, open.codec.method, Cause.squash(cause))))
        }
      })
    }
    default: {
      const open = self.streams.open.get(payload as number)
      self.streams.open.delete(payload as number)
      const done: Wire.Exit = { _tag: "Success", value: null }
      return open === undefined ? Effect.succeed(done) : Effect.as(Scope.close(open.scope, Exit.void), done)
    }
  }
}

/**
 * One metered call to another Env: in flight from its start until its
 * caller is resumed ({@link settled}) or interrupted. It is also the
 * canceler the caller's `Effect.callback` runs on interruption (it counts
 * the call, then continues with the transport's own cancellation), so
 * metering a call allocates this object and nothing else. An answer that is
 * not yet an Exit (a call sent again, a reply still to decode) is timed when
 * it ends.
 */
interface Metered extends Effect.Effect<void> {
  readonly series: CallSeries
  /** When the call started ({@link now}), or `NaN` when it is not timed. */
  readonly start: number
  /** Set once counted: an interruption racing the reply counts once. */
  done: boolean
  cancel: Effect.Effect<void>
}

const MeteredProto = Effectable.Prototype<Effect.Effect<void>>({
  label: "effect-corps/MeteredRemoteCall",
  evaluate() {
    const self = this as unknown as Metered
    if (!self.done) {
      self.done = true
      // NaN for a call not timed: `interrupted` only counts it.
      self.series.interrupted(now() - self.start)
    }
    return self.cancel
  }
})

const Metered = function (this: any, series: CallSeries) {
  this.series = series
  // Most calls are counted, not timed, once a method is busy (CallSeries.timeThis): no clock reading.
  this.start = series.timeThis() ? now() : Number.NaN
  this.done = false
  this.cancel = Effect.void
  series.inFlight++
} as unknown as new (
  series: CallSeries
) => Metered
Metered.prototype = MeteredProto

/** What resumes the caller of a metered call (`metered`), counted; `effect` itself when not metered. */
const settled = (
  metered: Metered | undefined,
  effect: Effect.Effect<unknown, unknown>
): Effect.Effect<unknown, unknown> => {
  if (metered === undefined || metered.done) return effect
  metered.done = true
  return metered.series.settleStarted(effect, metered.start)
}

/**
 * What a Target does with a call that failed before its reply came (through
 * `register`): an Effect that ends with a reply after all (the call sent
 * again, say), or `undefined` to fail the caller with `failure` as it is.
 * Only ever asked on that failure path.
 */
export type OnFailure = (
  codec: MethodCodec,
  request: Wire.Call,
  failure: Exit.Failure<unknown, unknown>
) => Effect.Effect<Wire.Exit, unknown> | undefined

/**
 * The caller side for `worker`: encodes the payload, hands the request to
 * `send`, and decodes the reply into the method's success or error.
 */
export const remoteTarget = (
  worker: AnyWorker,
  key: string,
  send: (request: Wire.Call) => Effect.Effect<Wire.Exit, unknown>,
  register?: Register,
  pin?: () => (request: Wire.Call) => Effect.Effect<Wire.Exit, unknown>,
  onFailure?: OnFailure
): Target => {
  const codecs = codecsOf(worker)
  const decode = (codec: MethodCodec, reply: Wire.Exit): Effect.Effect<unknown, unknown> => {
    switch (reply._tag) {
      case "Success":
        return run(codec.decodeSuccess, reply.value, "success", codec)
      case "Failure":
        return Exit.fail(decodeFailure(codec, reply.error))
      case "Defect":
        return Exit.fail(defectError(worker.key, codec.method, reply.defect))
      case "Interrupted":
        return Effect.interrupt
    }
  }
  const call = (
    method: string,
    payload: unknown,
    source: Wire.TraceSource | undefined,
    series?: CallSeries | undefined
  ) => {
    const codec = codecs.get(method)
    if (codec === undefined) return Effect.fail(new UnknownMethod({ worker: worker.key, method }))
    if (register !== undefined) {
      // One suspension per call: encode, send and decode all happen inside it.
      return Effect.callback<unknown, unknown>((resume) => {
        // Metrics on: the call is timed from here to its caller's resumption, with no frame of its own.
        const metered = series === undefined ? undefined : new Metered(series)
        const trace = Wire.traceOf(source)
        const encoded = run(codec.encodePayload, payload, "payload", codec)
        if (Exit.isFailure(encoded)) return resume(settled(metered, encoded))
        const request: Wire.Call = codec.spec.transfer
          ? { worker: worker.key, key, method, payload: encoded.value, transfer: [...buffersOf(encoded.value)], trace }
          : trace === undefined
            ? { worker: worker.key, key, method, payload: encoded.value }
            : { worker: worker.key, key, method, payload: encoded.value, trace }
        const cancel = register(request, (reply) => {
          if (!Exit.isExit(reply))
            return resume(
              settled(
                metered,
                Effect.flatMap(reply, (r) => decode(codec, r))
              )
            )
          const exit = reply as Exit.Exit<Wire.Exit, unknown>
          if (Exit.isSuccess(exit)) return resume(settled(metered, decode(codec, exit.value)))
          const recovered = onFailure?.(codec, request, exit)
          resume(settled(metered, recovered === undefined ? exit : Effect.flatMap(recovered, (r) => decode(codec, r))))
        })
        if (metered === undefined || cancel === undefined) return cancel
        // The caller is interrupted: counted, then the transport's own cancellation runs.
        metered.cancel = cancel
        return metered
      })
    }
    return Effect.suspend(() => {
      const trace = Wire.traceOf(source)
      const encoded = run(codec.encodePayload, payload, "payload", codec)
      if (Exit.isFailure(encoded)) return encoded
      const request: Wire.Call =
        trace === undefined
          ? { worker: worker.key, key, method, payload: encoded.value }
          : { worker: worker.key, key, method, payload: encoded.value, trace }
      return Effect.flatMap(send(request), (reply) => decode(codec, reply))
    })
  }
  return {
    call(method, payload) {
      return call(method, payload, undefined)
    },
    callTraced(method, payload, trace) {
      return call(method, payload, trace)
    },
    // Only the one-suspension path meters itself; the other is wrapped by the monitor.
    callMetered(method, payload, series, trace) {
      return register === undefined ? undefined : call(method, payload, trace, series)
    },
    stream(method, payload) {
      const codec = codecs.get(method)
      if (codec === undefined) return Stream.fail(new UnknownMethod({ worker: worker.key, method }))
      // Every call of one stream must reach the Env that opened it: pin a route per stream.
      return Stream.unwrap(
        Effect.suspend(() => {
          const route = pin?.() ?? send
          const control = (op: string, value: unknown) =>
            Effect.flatMap(route({ worker: STREAM, key, method: op, payload: value }), (reply) =>
              reply._tag === "Success"
                ? Effect.succeed(reply.value)
                : reply._tag === "Failure"
                  ? Effect.fail(decodeFailure(codec, reply.error))
                  : reply._tag === "Defect"
                    ? Effect.fail(defectError(worker.key, method, reply.defect))
                    : Effect.interrupt
            )
          const open = Effect.suspend(() => {
            const encoded = run(codec.encodePayload, payload, "payload", codec)
            if (Exit.isFailure(encoded)) return encoded
            return control("open", { worker: worker.key, key, method, payload: encoded.value })
          })
          return Effect.map(
            Effect.acquireRelease(open, (id) => Effect.ignore(control("close", id))),
            (id) =>
              Stream.fromEffectRepeat(
                Effect.flatMap(control("pull", id), (reply): Effect.Effect<ReadonlyArray<unknown>, unknown> => {
                  const [done, values] = reply as [0 | 1, ReadonlyArray<unknown>]
                  if (done === 1) return Cause.done()
                  const decoded: Array<unknown> = []
                  for (const value of values) {
                    const exit = run(codec.decodeSuccess, value, "success", codec)
                    if (Exit.isFailure(exit)) return Effect.failCause(exit.cause)
                    decoded.push(exit.value)
                  }
                  return Effect.succeed(decoded)
                })
              ).pipe(Stream.flattenIterable<unknown, unknown, never>)
          )
        })
      )
    }
  }
}

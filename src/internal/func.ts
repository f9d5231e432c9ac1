/**
 * The FastPath for stateless Workers (Funcs): the handler runs in the
 * caller's fiber, with an optional bound on calls running at once.
 */
import { Cause, Effect, Semaphore, Stream } from "effect"
import { CorpsClosed, UnknownMethod } from "../CorpsError.ts"
import type { Target } from "./handle.ts"
import {
  type AnyHandler,
  callPrototype,
  type DefectMapper,
  defectError,
  defectMapper,
  downstream,
  invokeWith
} from "./invoke.ts"
import type { CallSeries } from "./recorder.ts"

/**
 * One Func call, as a description: running it calls the handler (each run
 * once). One object per call; no closure, no `suspend`.
 */
interface FuncCall extends Effect.Effect<unknown, unknown> {
  readonly func: LocalFunc
  readonly handler: AnyHandler
  readonly method: string
  readonly payload: unknown
  step(): Effect.Effect<unknown, unknown>
}

const FuncCallProto = callPrototype<FuncCall>("effect-corps/FuncCall", function () {
  return invokeWith(this.handler, this.payload, this.func, this.method)
})

const FuncCall = function (this: any, func: LocalFunc, handler: AnyHandler, method: string, payload: unknown) {
  this.func = func
  this.handler = handler
  this.method = method
  this.payload = payload
} as unknown as new (
  func: LocalFunc,
  handler: AnyHandler,
  method: string,
  payload: unknown
) => FuncCall
FuncCall.prototype = FuncCallProto

/**
 * One Func call counted into its method's series (metrics on): the same
 * object as {@link FuncCall} plus the series, so a metered FastPath call
 * allocates what an unmetered one does. A synchronous handler's call is
 * counted with no Effect frame; the first call of each tick is timed
 * (reading the clock twice costs more than the call: see CallSeries).
 */
interface MeteredFuncCall extends FuncCall {
  readonly series: CallSeries
}

const MeteredFuncCallProto = callPrototype<MeteredFuncCall>("effect-corps/MeteredFuncCall", function () {
  const start = this.series.begin()
  return this.series.finish(invokeWith(this.handler, this.payload, this.func, this.method), start)
})

const MeteredFuncCall = function (
  this: any,
  func: LocalFunc,
  handler: AnyHandler,
  method: string,
  payload: unknown,
  series: CallSeries
) {
  this.func = func
  this.handler = handler
  this.method = method
  this.payload = payload
  this.series = series
} as unknown as new (
  func: LocalFunc,
  handler: AnyHandler,
  method: string,
  payload: unknown,
  series: CallSeries
) => MeteredFuncCall
MeteredFuncCall.prototype = MeteredFuncCallProto

/** A replica of a Func: its handlers, built once. */
export class LocalFunc implements Target {
  readonly worker: string
  readonly corps: string
  /** Set once built (the Corps builds its Funcs after creating every handle). */
  handlers: Record<string, AnyHandler> = {}
  /** One defect mapper per method, made once. */
  mappers: Record<string, DefectMapper> = {}
  readonly semaphore: Semaphore.Semaphore | undefined
  closed = false
  constructor(worker: string, corps: string, concurrency: number | "unbounded" | undefined) {
    this.worker = worker
    this.corps = corps
    this.semaphore = typeof concurrency === "number" ? Semaphore.makeUnsafe(concurrency) : undefined
  }

  init(handlers: Record<string, AnyHandler>): void {
    this.handlers = handlers
    const mappers: Record<string, DefectMapper> = {}
    for (const method of Object.keys(handlers)) mappers[method] = defectMapper(this.worker, method)
    this.mappers = mappers
  }

  mapperOf(method: string): DefectMapper {
    return (this.mappers[method] ??= defectMapper(this.worker, method))
  }

  /** Later calls fail with CorpsClosed. */
  close(): void {
    this.closed = true
  }

  call(method: string, payload: unknown): Effect.Effect<unknown, unknown> {
    const handler = this.handlers[method]
    if (handler === undefined) {
      return Effect.fail(
        this.closed ? new CorpsClosed({ corps: this.corps }) : new UnknownMethod({ worker: this.worker, method })
      )
    }
    if (this.closed) return Effect.fail(new CorpsClosed({ corps: this.corps }))
    const run = new FuncCall(this, handler, method, payload)
    return this.semaphore === undefined ? run : this.semaphore.withPermits(1)(run)
  }

  /** {@link call}, counted into `series` (see {@link MeteredFuncCall}). Traced calls are spans, not this. */
  callMetered(method: string, payload: unknown, series: CallSeries): Effect.Effect<unknown, unknown> | undefined {
    const handler = this.handlers[method]
    // A bounded Func waits for a permit, and a missing or closed one fails: the monitor's own wrapper times those.
    if (handler === undefined || this.closed || this.semaphore !== undefined) return undefined
    return new MeteredFuncCall(this, handler, method, payload, series)
  }

  stream(method: string, payload: unknown): Stream.Stream<unknown, unknown> {
    const handler = this.handlers[method]
    if (handler === undefined) return Stream.fail(new UnknownMethod({ worker: this.worker, method }))
    return localStream(this.worker, method, () =>
      handlerStream(this.worker, method, handler(payload) as Stream.Stream<unknown, unknown>)
    )
  }
}

/** Runs a stream handler, turning its defects (thrown or died) into WorkerDefect. */
export const localStream = (
  worker: string,
  method: string,
  make: () => Stream.Stream<unknown, unknown>
): Stream.Stream<unknown, unknown> =>
  Stream.suspend(() => {
    try {
      return make()
    } catch (defect) {
      return Stream.fail(defectError(worker, method, defect))
    }
  }).pipe(
    Stream.catchCause((cause) => {
      if (Cause.hasInterrupts(cause) || !Cause.hasDies(cause)) return Stream.failCause(cause)
      return Stream.fail(defectError(worker, method, cause.reasons.find(Cause.isDieReason)?.defect))
    })
  )

/** A stream a handler returned: a CallError it fails with (from a call it made) becomes DownstreamFailed. */
export const handlerStream = (
  worker: string,
  method: string,
  stream: Stream.Stream<unknown, unknown>
): Stream.Stream<unknown, unknown> =>
  Stream.catchCause(stream, (cause) =>
    Cause.hasInterrupts(cause) || Cause.hasDies(cause)
      ? Stream.failCause(cause)
      : Stream.fromEffect(downstream(worker, method, cause))
  )

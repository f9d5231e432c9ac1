/**
 * The one vocabulary of a call that crosses an Env boundary, shared by the
 * caller's Targets and the Env's Dispatcher (src/internal/dispatch.ts) and by
 * every transport beneath them (src/node/transport): a {@link Call} goes
 * out, an {@link Exit} comes back. Payloads, values and errors are already
 * Schema-encoded: plain, structured-clone-able data.
 */
import { Context, Fiber, References, Tracer } from "effect"

/** One call: which method of which Worker instance, with an encoded payload. */
export interface Call {
  readonly worker: string
  readonly key: string
  readonly method: string
  readonly payload: unknown
  /** Buffers to move rather than copy (methods declared with `transfer: true`); a process copies them. */
  readonly transfer?: ReadonlyArray<ArrayBuffer> | undefined
  /**
   * The caller's span, when tracing is on (`Monitoring.layer`): the Env opens
   * the handler's span under it. Absent otherwise, so a call without tracing
   * carries and costs nothing more.
   */
  readonly trace?: TraceContext | undefined
}

/**
 * A span as it crosses an Env boundary (W3C trace-context fields): the
 * caller's span, the parent of the call's span in the Env. Empty ids mark a
 * root call (no span around it): the Env's span starts a trace, `sampled` as
 * the caller decided.
 */
export interface TraceContext {
  readonly traceId: string
  readonly spanId: string
  readonly sampled: boolean
}

/** A sampled root call's trace context (see {@link TraceContext}). */
export const sampledRoot: TraceContext = Object.freeze({ traceId: "", spanId: "", sampled: true })
/** An unsampled root call's trace context: its span, and every span under it, is not exported. */
export const unsampledRoot: TraceContext = Object.freeze({ traceId: "", spanId: "", sampled: false })

/**
 * A call's trace context still to be read: from the fiber that runs the call,
 * when it runs (a call is an Effect description, run by whichever fiber
 * yields it). `read` gives that fiber's current span, or a root call's
 * sampling decision taken at `rate`, or `undefined` when the fiber has
 * tracing switched off. One per Target: a call allocates nothing for it.
 */
export class FromFiber {
  readonly rate: number
  constructor(rate: number) {
    this.rate = rate
  }
  read(): TraceContext | undefined {
    const fiber = Fiber.getCurrent()
    if (fiber === undefined || !fiber.getRef(References.TracerEnabled)) return undefined
    const parent = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
    if (parent === undefined) return Math.random() < this.rate ? sampledRoot : unsampledRoot
    return { traceId: parent.traceId, spanId: parent.spanId, sampled: parent.sampled }
  }
}

/** A trace context, or where to read it when the call runs. */
export type TraceSource = TraceContext | FromFiber

/** The trace context a call carries, read now when `source` says to read it from the running fiber. */
export const traceOf = (source: TraceSource | undefined): TraceContext | undefined =>
  source instanceof FromFiber ? source.read() : source

/** Whether `trace` marks a root call rather than a caller's span. */
export const isRoot = (trace: TraceContext): boolean => trace.traceId === ""

/**
 * How a call ended. A failure carries `[1, error]` for effect-corps' own
 * errors (CallError, with their own Schema) and `[0, error]` for the method's
 * declared errors; `Defect` is what a transport reports when the serving side
 * itself died or its reply could not be sent.
 */
export type Exit = Success | Failure | Defect | Interrupted

/** The handler succeeded with an encoded value. */
export interface Success {
  readonly _tag: "Success"
  readonly value: unknown
}

/** The handler failed with an encoded error (see {@link Exit}). */
export interface Failure {
  readonly _tag: "Failure"
  readonly error: readonly [0 | 1, unknown]
}

/** The serving side died; `defect` is encoded with `Schema.Defect()`. */
export interface Defect {
  readonly _tag: "Defect"
  readonly defect: unknown
}

/** The handler was interrupted. */
export interface Interrupted {
  readonly _tag: "Interrupted"
}

/** The shared `Interrupted` exit (it carries nothing, so one object serves every call). */
export const interrupted: Interrupted = { _tag: "Interrupted" }

/** An encoded success. */
export const success = (value: unknown): Success => ({ _tag: "Success", value })

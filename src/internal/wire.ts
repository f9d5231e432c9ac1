/**
 * The one vocabulary of a call that crosses an Env boundary, shared by the
 * caller's Targets and the Env's Dispatcher (src/internal/dispatch.ts) and by
 * every transport beneath them (src/node/transport): a {@link Call} goes
 * out, an {@link Exit} comes back. Payloads, values and errors are already
 * Schema-encoded: plain, structured-clone-able data.
 */

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

/** A span as it crosses an Env boundary (W3C trace-context fields). */
export interface TraceContext {
  readonly traceId: string
  readonly spanId: string
  readonly sampled: boolean
}

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

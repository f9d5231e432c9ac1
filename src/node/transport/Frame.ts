/**
 * How calls and replies are laid out on the call transport between a
 * caller's runtime and an Env.
 *
 * A batch — one `postMessage`, or one `process.send` with `serialization:
 * "advanced"` — is ONE flat array: the frames produced in a turn laid end to
 * end, each starting with its tag, which gives its length.
 *
 * | frame     | fields                                       |
 * | --------- | -------------------------------------------- |
 * | request   | `0, id, worker, key, method, payload`        |
 * | interrupt | `1, id`                                      |
 * | reply     | `2, id, exit code, value`                    |
 *
 * A `Wire.Call` is written straight into the batch, field by field, and read
 * back from it; so is a `Wire.Exit` (its tag as an exit code). No frame exists
 * as an object of its own: a flat array of primitives clones faster than
 * nested tuples or objects (docs/transport.md). Payloads, values and errors
 * are already Schema-encoded by the layer above; the transport never sees a
 * Schema.
 *
 * @since 0.1.0
 */
import * as Wire from "../../internal/wire.ts"

/** Tag of a request frame. @since 0.1.0 */
export const REQUEST = 0
/** Tag of an interrupt frame: the caller of call `id` was interrupted. @since 0.1.0 */
export const INTERRUPT = 1
/** Tag of a reply frame. @since 0.1.0 */
export const REPLY = 2
/** A request with its caller's trace context (three more slots); only sent while tracing is on. */
export const TRACED_REQUEST = 3

/** Exit code of a reply: the handler succeeded. @since 0.1.0 */
export const SUCCESS = 0
/** Exit code of a reply: the handler failed; the value is `[0 | 1, encoded error]`. @since 0.1.0 */
export const FAILURE = 1
/** Exit code of a reply: the handler died; the value is an encoded defect. @since 0.1.0 */
export const DEFECT = 2
/** Exit code of a reply: the handler was interrupted. @since 0.1.0 */
export const INTERRUPTED = 3

/** Any frame tag. @since 0.1.0 */
export type Tag = typeof REQUEST | typeof INTERRUPT | typeof REPLY | typeof TRACED_REQUEST

/**
 * What reads a batch: one method per kind of frame, called in batch order.
 *
 * @since 0.1.0
 * @category models
 */
export interface Receiver {
  /** Caller → Env: run this call; `id` is unique among the calls in flight on one link. */
  readonly call: (id: number, call: Wire.Call) => void
  /** Caller → Env: interrupt call `id`, and reply once its finalizers have run. */
  readonly interrupt: (id: number) => void
  /** Env → caller: how call `id` ended. */
  readonly reply: (id: number, exit: Wire.Exit) => void
}

/** Appends a request frame to `batch`. @since 0.1.0 */
export const writeCall = (batch: Array<unknown>, id: number, call: Wire.Call): void => {
  const trace = call.trace
  if (trace === undefined) batch.push(REQUEST, id, call.worker, call.key, call.method, call.payload)
  else
    batch.push(
      TRACED_REQUEST,
      id,
      call.worker,
      call.key,
      call.method,
      call.payload,
      trace.traceId,
      trace.spanId,
      trace.sampled
    )
}

/** Appends an interrupt frame to `batch`. @since 0.1.0 */
export const writeInterrupt = (batch: Array<unknown>, id: number): void => {
  batch.push(INTERRUPT, id)
}

/** Appends the reply frame of `exit` to `batch`. @since 0.1.0 */
export const writeReply = (batch: Array<unknown>, id: number, exit: Wire.Exit): void => {
  switch (exit._tag) {
    case "Success":
      batch.push(REPLY, id, SUCCESS, exit.value)
      return
    case "Failure":
      batch.push(REPLY, id, FAILURE, exit.error)
      return
    case "Defect":
      batch.push(REPLY, id, DEFECT, exit.defect)
      return
    case "Interrupted":
      batch.push(REPLY, id, INTERRUPTED, undefined)
  }
}

/** The number of fields of a frame with tag `tag`. @since 0.1.0 */
export const lengthOf = (tag: unknown): number =>
  tag === REQUEST ? 6 : tag === INTERRUPT ? 2 : tag === TRACED_REQUEST ? 9 : 4

/**
 * Reads every frame of `batch` into `receiver`, in order. A plain loop: each
 * frame may resume a fiber, which runs synchronously up to its next
 * suspension and returns, so thousands of frames in one batch never nest.
 *
 * @since 0.1.0
 */
export const read = (batch: ReadonlyArray<unknown>, receiver: Receiver): void => {
  for (let i = 0; i < batch.length; ) {
    const tag = batch[i]
    const id = batch[i + 1] as number
    if (tag === REPLY) {
      receiver.reply(id, exitOf(batch[i + 2], batch[i + 3]))
      i += 4
    } else if (tag === REQUEST) {
      receiver.call(id, {
        worker: batch[i + 2] as string,
        key: batch[i + 3] as string,
        method: batch[i + 4] as string,
        payload: batch[i + 5]
      })
      i += 6
    } else if (tag === TRACED_REQUEST) {
      receiver.call(id, {
        worker: batch[i + 2] as string,
        key: batch[i + 3] as string,
        method: batch[i + 4] as string,
        payload: batch[i + 5],
        trace: { traceId: batch[i + 6] as string, spanId: batch[i + 7] as string, sampled: batch[i + 8] as boolean }
      })
      i += 9
    } else {
      receiver.interrupt(id)
      i += 2
    }
  }
}

const exitOf = (code: unknown, value: unknown): Wire.Exit => {
  switch (code) {
    case SUCCESS:
      return { _tag: "Success", value }
    case FAILURE:
      return { _tag: "Failure", error: value as readonly [0 | 1, unknown] }
    case DEFECT:
      return { _tag: "Defect", defect: value }
    default:
      return Wire.interrupted
  }
}

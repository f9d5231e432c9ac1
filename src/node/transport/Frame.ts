/**
 * The messages of the call transport between a caller's runtime and an Env.
 *
 * Frames are plain tuples because they cross a structured-clone boundary
 * (`postMessage`, or `process.send` with `serialization: "advanced"`): on this
 * machine a batch of 64 tuple frames cloned about 1.5× faster than the same
 * frames as objects with named fields (docs/transport.md). Payloads, values
 * and errors are already Schema-encoded by the layer above; the transport
 * never sees a Schema.
 *
 * @since 0.1.0
 */

/** Tag of a {@link Request} frame. @since 0.1.0 */
export const REQUEST = 0
/** Tag of an {@link Interrupt} frame. @since 0.1.0 */
export const INTERRUPT = 1
/** Tag of a {@link Reply} frame. @since 0.1.0 */
export const REPLY = 2

/** Exit code of a {@link Reply}: the handler succeeded. @since 0.1.0 */
export const SUCCESS = 0
/** Exit code of a {@link Reply}: the handler failed with a declared, encoded error. @since 0.1.0 */
export const FAILURE = 1
/** Exit code of a {@link Reply}: the handler died; the value is an encoded defect. @since 0.1.0 */
export const DEFECT = 2
/** Exit code of a {@link Reply}: the handler was interrupted. @since 0.1.0 */
export const INTERRUPTED = 3

/**
 * Caller → Env: run `method` of `worker` (instance `key`) with an encoded payload.
 * `id` is unique among the calls in flight on one link.
 *
 * @since 0.1.0
 * @category frames
 */
export type Request = readonly [
  tag: typeof REQUEST,
  id: number,
  worker: string,
  key: string,
  method: string,
  payload: unknown
]

/**
 * Caller → Env: the caller of call `id` was interrupted; interrupt its handler
 * and confirm with a {@link Reply} once the handler's finalizers have run.
 *
 * @since 0.1.0
 * @category frames
 */
export type Interrupt = readonly [tag: typeof INTERRUPT, id: number]

/**
 * Env → caller: the outcome of call `id`; `value` is the encoded success value,
 * error or defect (absent when interrupted).
 *
 * @since 0.1.0
 * @category frames
 */
export type Reply = readonly [
  tag: typeof REPLY,
  id: number,
  exit: typeof SUCCESS | typeof FAILURE | typeof DEFECT | typeof INTERRUPTED,
  value: unknown
]

/**
 * Any frame of the call transport.
 *
 * @since 0.1.0
 * @category frames
 */
export type Frame = Request | Interrupt | Reply

/**
 * What the handler side of a call produced, already encoded: the value of a
 * {@link Reply} as seen by the code above the transport.
 *
 * @since 0.1.0
 * @category models
 */
export type ReplyExit =
  | { readonly _tag: "Success"; readonly value: unknown }
  | { readonly _tag: "Failure"; readonly error: unknown }
  | { readonly _tag: "Defect"; readonly defect: unknown }
  | { readonly _tag: "Interrupted" }

/**
 * One call as the layer above sees it, on both sides of a link: which method
 * of which Worker instance, with an encoded payload.
 *
 * @since 0.1.0
 * @category models
 */
export interface Call {
  readonly worker: string
  readonly key: string
  readonly method: string
  readonly payload: unknown
}

/** The shared `Interrupted` exit (it carries nothing, so one object serves every call). @since 0.1.0 */
export const interrupted: ReplyExit = { _tag: "Interrupted" }

/** Builds a {@link Request} frame. @since 0.1.0 */
export const request = (id: number, call: Call): Request => [
  REQUEST,
  id,
  call.worker,
  call.key,
  call.method,
  call.payload
]

/** Builds an {@link Interrupt} frame. @since 0.1.0 */
export const interrupt = (id: number): Interrupt => [INTERRUPT, id]

/** Builds the {@link Reply} frame that carries `exit` for call `id`. @since 0.1.0 */
export const reply = (id: number, exit: ReplyExit): Reply => {
  switch (exit._tag) {
    case "Success":
      return [REPLY, id, SUCCESS, exit.value]
    case "Failure":
      return [REPLY, id, FAILURE, exit.error]
    case "Defect":
      return [REPLY, id, DEFECT, exit.defect]
    case "Interrupted":
      return [REPLY, id, INTERRUPTED, undefined]
  }
}

/** Reads the {@link ReplyExit} carried by a {@link Reply} frame. @since 0.1.0 */
export const exitOf = (frame: Reply): ReplyExit => {
  switch (frame[2]) {
    case SUCCESS:
      return { _tag: "Success", value: frame[3] }
    case FAILURE:
      return { _tag: "Failure", error: frame[3] }
    case DEFECT:
      return { _tag: "Defect", defect: frame[3] }
    default:
      return interrupted
  }
}

/** Reads the {@link Call} carried by a {@link Request} frame. @since 0.1.0 */
export const callOf = (frame: Request): Call => ({
  worker: frame[2],
  key: frame[3],
  method: frame[4],
  payload: frame[5]
})

/**
 * One Link carrying calls both ways: the caller calls Workers in the Env, and
 * Workers in the Env call back (handles to Workers placed elsewhere). Requests
 * and interrupts go to the side that serves, replies to the side that calls;
 * both share the one channel, and so its batching.
 */

import { type Frame, REPLY } from "./transport/Frame.ts"
import type { Link } from "./transport/Link.ts"

/** The two halves of a shared Link. Closing either closes the channel. */
export interface Duplex {
  /** For a Client: carries its requests out and its replies in. */
  readonly calling: Link
  /** For a Server: carries requests in and replies out. */
  readonly serving: Link
}

/** Splits `link` into a calling half and a serving half. */
export const split = (link: Link): Duplex => {
  let toCaller: ((frames: ReadonlyArray<Frame>) => void) | undefined
  let toServer: ((frames: ReadonlyArray<Frame>) => void) | undefined
  const early: Array<Frame> = []
  link.onMessage((frames) => {
    let replies: Array<Frame> | undefined
    let requests: Array<Frame> | undefined
    for (const frame of frames) {
      if (frame[0] === REPLY) (replies ??= []).push(frame)
      else (requests ??= []).push(frame)
    }
    if (replies !== undefined) toCaller?.(replies)
    if (requests !== undefined) {
      if (toServer === undefined) early.push(...requests)
      else toServer(requests)
    }
  })
  // A frame that could not be cloned goes back to the half that sent it:
  // replies were sent by the serving half, requests by the calling half.
  type Undeliverable = (frame: Frame, error: unknown) => void
  let callerUndeliverable: Undeliverable | undefined
  let serverUndeliverable: Undeliverable | undefined
  link.onUndeliverable((frame, error) =>
    (frame[0] === REPLY ? serverUndeliverable : callerUndeliverable)?.(frame, error)
  )
  const half = (
    onMessage: (cb: (frames: ReadonlyArray<Frame>) => void) => void,
    onUndeliverable: (cb: Undeliverable) => void
  ): Link => ({
    send: (frames, transfer) => link.send(frames, transfer),
    onMessage,
    onClose: (cb) => link.onClose(cb),
    onUndeliverable,
    get closeReason() {
      return link.closeReason
    },
    close: link.close
  })
  return {
    calling: half(
      (cb) => {
        toCaller = cb
      },
      (cb) => {
        callerUndeliverable = cb
      }
    ),
    serving: half(
      (cb) => {
        toServer = cb
        if (early.length > 0) cb(early.splice(0))
      },
      (cb) => {
        serverUndeliverable = cb
      }
    )
  }
}

/**
 * One Link carrying calls both ways: the caller calls Workers in the Env, and
 * Workers in the Env call back (handles to Workers placed elsewhere). Requests
 * and interrupts go to the side that serves, replies to the side that calls;
 * both share the one channel, and so its batching.
 */
import type * as Wire from "../internal/wire.ts"
import * as Frame from "./transport/Frame.ts"
import type { Link } from "./transport/Link.ts"

/** The two halves of a shared Link. Closing either closes the channel. */
export interface Duplex {
  /** For a Client: carries its requests out and its replies in. */
  readonly calling: Link
  /** For a Server: carries requests in and replies out. */
  readonly serving: Link
}

type Undeliverable = (tag: Frame.Tag, id: number, error: unknown) => void

/** Splits `link` into a calling half and a serving half. */
export const split = (link: Link): Duplex => {
  let caller: Frame.Receiver | undefined
  let server: Frame.Receiver | undefined
  // Requests that arrive before the serving half has its receiver, replayed to it in order.
  const early: Array<{ readonly id: number; readonly call: Wire.Call | undefined }> = []
  link.onMessage({
    call: (id, call) => (server === undefined ? void early.push({ id, call }) : server.call(id, call)),
    interrupt: (id) => (server === undefined ? void early.push({ id, call: undefined }) : server.interrupt(id)),
    reply: (id, exit) => caller?.reply(id, exit)
  })
  // A frame that could not be cloned goes back to the half that sent it:
  // replies were sent by the serving half, requests by the calling half.
  let callerUndeliverable: Undeliverable | undefined
  let serverUndeliverable: Undeliverable | undefined
  link.onUndeliverable((tag, id, error) =>
    (tag === Frame.REPLY ? serverUndeliverable : callerUndeliverable)?.(tag, id, error)
  )
  const half = (onMessage: (receiver: Frame.Receiver) => void, onUndeliverable: (cb: Undeliverable) => void): Link => ({
    sendCall: (id, call) => link.sendCall(id, call),
    sendInterrupt: (id) => link.sendInterrupt(id),
    sendReply: (id, exit) => link.sendReply(id, exit),
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
      (receiver) => {
        caller = receiver
      },
      (cb) => {
        callerUndeliverable = cb
      }
    ),
    serving: half(
      (receiver) => {
        server = receiver
        for (const { id, call } of early.splice(0)) {
          if (call === undefined) receiver.interrupt(id)
          else receiver.call(id, call)
        }
      },
      (cb) => {
        serverUndeliverable = cb
      }
    )
  }
}

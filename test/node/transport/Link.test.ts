import { MessageChannel } from "node:worker_threads"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Frame from "../../../src/node/transport/Frame.ts"
import * as Link from "../../../src/node/transport/Link.ts"

// A channel whose far end is read raw, to see exactly what goes over the wire.
const rawChannel = Effect.acquireRelease(
  Effect.sync(() => {
    const channel = new MessageChannel()
    const messages: Array<unknown> = []
    let onMessage: (() => void) | undefined
    channel.port2.on("message", (message) => {
      messages.push(message)
      onMessage?.()
    })
    const next = Effect.callback<void>((resume) => {
      onMessage = () => {
        onMessage = undefined
        resume(Effect.void)
      }
    })
    return { channel, link: Link.fromMessagePort(channel.port1), messages, next }
  }),
  ({ channel }) =>
    Effect.sync(() => {
      channel.port1.close()
      channel.port2.close()
    })
)

describe("Link", () => {
  it.live("sends every frame queued in one turn as ONE flat message", () =>
    Effect.gen(function* () {
      const { link, messages, next } = yield* rawChannel
      link.sendInterrupt(1)
      link.sendInterrupt(2)
      link.sendCall(3, { worker: "W", key: "k", method: "m", payload: { n: 1 } })
      link.sendReply(4, { _tag: "Success", value: "x" })
      link.sendReply(5, { _tag: "Failure", error: [0, "e"] })
      yield* next
      assert.deepStrictEqual(messages, [[1, 1, 1, 2, 0, 3, "W", "k", "m", { n: 1 }, 2, 4, 0, "x", 2, 5, 1, [0, "e"]]])
    })
  )

  it.live("delivers the other frames of a batch when one cannot be cloned", () =>
    Effect.gen(function* () {
      const { link, messages, next } = yield* rawChannel
      const undeliverable: Array<[Frame.Tag, number]> = []
      link.onUndeliverable((tag, id) => undeliverable.push([tag, id]))
      link.sendInterrupt(1)
      link.sendReply(2, { _tag: "Success", value: () => 1 })
      link.sendInterrupt(3)
      yield* next
      yield* next
      assert.deepStrictEqual(messages, [
        [1, 1],
        [1, 3]
      ])
      assert.deepStrictEqual(undeliverable, [[2, 2]])
    })
  )

  it.live("replays batches received before onMessage, and reports a close at once to late listeners", () =>
    Effect.gen(function* () {
      const channel = new MessageChannel()
      const link = Link.fromMessagePort(channel.port1)
      const closed = Effect.callback<string>((resume) => link.onClose((reason) => resume(Effect.succeed(reason))))
      // Counted by a second listener, registered after the link's own: at 3, the link has buffered all three.
      yield* Effect.callback<void>((resume) => {
        let count = 0
        channel.port1.on("message", () => {
          if (++count === 3) resume(Effect.void)
        })
        channel.port2.postMessage([1, 7])
        channel.port2.postMessage([1, 8, 2, 5, 0, "y"])
        channel.port2.postMessage([0, 9, "W", "k", "m", null])
      })
      const received: Array<unknown> = []
      link.onMessage({
        call: (id, call) => received.push(["call", id, call]),
        interrupt: (id) => received.push(["interrupt", id]),
        reply: (id, exit) => received.push(["reply", id, exit])
      })
      assert.deepStrictEqual(received, [
        ["interrupt", 7],
        ["interrupt", 8],
        ["reply", 5, { _tag: "Success", value: "y" }],
        ["call", 9, { worker: "W", key: "k", method: "m", payload: null }]
      ])
      channel.port2.close()
      assert.strictEqual(yield* closed, "message port closed")
      assert.strictEqual(link.closeReason, "message port closed")
      assert.strictEqual(yield* closed, "message port closed")
    })
  )
})

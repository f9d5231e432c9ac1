import { MessageChannel } from "node:worker_threads"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Frame from "../../../src/node/transport/Frame.ts"
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
      link.send([Frame.interrupt(1)])
      link.send([Frame.interrupt(2), Frame.interrupt(3)])
      link.send([Frame.reply(4, { _tag: "Success", value: "x" })])
      yield* next
      assert.deepStrictEqual(messages, [[1, 1, 1, 2, 1, 3, 2, 4, 0, "x"]])
    })
  )

  it.live("delivers the other frames of a batch when one cannot be cloned", () =>
    Effect.gen(function* () {
      const { link, messages, next } = yield* rawChannel
      const undeliverable: Array<Frame.Frame> = []
      link.onUndeliverable((frame) => undeliverable.push(frame))
      const bad = Frame.reply(2, { _tag: "Success", value: () => 1 })
      link.send([Frame.interrupt(1), bad, Frame.interrupt(3)])
      yield* next
      yield* next
      assert.deepStrictEqual(messages, [
        [1, 1],
        [1, 3]
      ])
      assert.deepStrictEqual(undeliverable, [bad])
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
        channel.port2.postMessage([1, 9])
      })
      const received: Array<ReadonlyArray<Frame.Frame>> = []
      link.onMessage((frames) => received.push(frames))
      assert.deepStrictEqual(received, [
        [[1, 7]],
        [
          [1, 8],
          [2, 5, 0, "y"]
        ],
        [[1, 9]]
      ])
      channel.port2.close()
      assert.strictEqual(yield* closed, "message port closed")
      assert.strictEqual(link.closeReason, "message port closed")
      assert.strictEqual(yield* closed, "message port closed")
    })
  )
})

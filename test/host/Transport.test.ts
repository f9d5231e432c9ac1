/**
 * The socket transport and the caller's side of the host protocol, on
 * loopback sockets made by the test: frames, limits, heartbeats, and the
 * typed errors of a daemon that answers wrongly.
 */
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { dial } from "../../src/host/dial.ts"
import * as Protocol from "../../src/host/protocol.ts"
import * as Handshake from "../../src/internal/auth.ts"
import { BATCH, CONTROL, FrameReader, fromSocket, writeFrame } from "../../src/node/transport/Socket.ts"

/** A connected pair of loopback sockets. */
const pair = (): Promise<readonly [Net.Socket, Net.Socket]> =>
  new Promise((resolve) => {
    const server = Net.createServer((accepted) => {
      server.close()
      resolve([client, accepted])
    })
    let client: Net.Socket
    server.listen(0, "127.0.0.1", () => {
      client = Net.createConnection((server.address() as Net.AddressInfo).port, "127.0.0.1")
    })
  })

const closeReasonOf = (link: ReturnType<typeof fromSocket>) => new Promise<string>((resolve) => link.onClose(resolve))

describe("socket transport", () => {
  it("a frame split across many chunks, and many frames in one chunk, are read whole and in order", () => {
    const frames: Array<string> = []
    const reader = new FrameReader(
      1024,
      (kind, body) => frames.push(`${kind}:${body.toString()}`),
      (reason) => assert.fail(reason)
    )
    const frame = (kind: number, text: string) => {
      const body = Buffer.from(text)
      const head = Buffer.alloc(5)
      head.writeUInt32BE(body.length, 0)
      head[4] = kind
      return Buffer.concat([head, body])
    }
    const all = Buffer.concat([frame(0, "first"), frame(1, ""), frame(2, "third, longer")])
    for (let i = 0; i < 7; i++) reader.push(all.subarray(i, i + 1))
    reader.push(all.subarray(7))
    assert.deepStrictEqual(frames, ["0:first", "1:", "2:third, longer"])
  })

  it("calls and replies cross a socket link both ways", async () => {
    const [a, b] = await pair()
    const left = fromSocket(a)
    const right = fromSocket(b)
    right.onMessage({
      call: (id, call) => right.sendReply(id, { _tag: "Success", value: [call.method, call.payload] }),
      interrupt: () => {},
      reply: () => {}
    })
    const reply = new Promise<unknown>((resolve) =>
      left.onMessage({ call: () => {}, interrupt: () => {}, reply: (id, exit) => resolve([id, exit]) })
    )
    left.sendCall(7, { worker: "W", key: "", method: "m", payload: { n: 1n, at: new Map([[1, 2]]) } })
    assert.deepStrictEqual(await reply, [7, { _tag: "Success", value: ["m", { n: 1n, at: new Map([[1, 2]]) }] }])
    await Effect.runPromise(left.close)
    assert.strictEqual(await closeReasonOf(right), "connection to peer closed")
  })

  it("a frame over the limit closes the link with a reason that says so", async () => {
    const [a, b] = await pair()
    const link = fromSocket(b, { maxFrameBytes: 1024, peer: "the test" })
    writeFrame(a, BATCH, Buffer.alloc(4096))
    assert.match(await closeReasonOf(link), /the test a frame of 4096 bytes is over the limit of 1024 bytes/)
    a.destroy()
  })

  it("a body that is not a batch closes the link; so does an unknown kind", async () => {
    const [a, b] = await pair()
    const link = fromSocket(b)
    writeFrame(a, BATCH, Buffer.from([1, 2, 3, 4, 5]))
    assert.match(await closeReasonOf(link), /undecodable frame|not a batch/)
    const [c, d] = await pair()
    const other = fromSocket(d)
    writeFrame(c, 9, Buffer.alloc(0))
    assert.match(await closeReasonOf(other), /unknown kind 9/)
    a.destroy()
    c.destroy()
  })

  it("a silent peer is found by heartbeats; a quiet but live one is not", async () => {
    const [a, b] = await pair()
    // `a` is live but idle: its link pings. `b`'s peer never reads nor writes anything of its own.
    const live = fromSocket(a, { heartbeatMillis: 20, heartbeatTimeoutMillis: 200 })
    const watched = fromSocket(b, { heartbeatMillis: 20, heartbeatTimeoutMillis: 200 })
    const [c, d] = await pair()
    const silent = fromSocket(d, { heartbeatMillis: 20, heartbeatTimeoutMillis: 200, peer: "mute" })
    assert.match(await closeReasonOf(silent), /heartbeat timed out: nothing from mute/)
    assert.strictEqual(live.closeReason, undefined)
    assert.strictEqual(watched.closeReason, undefined)
    c.destroy()
    await Effect.runPromise(live.close)
  })
})

/** A fake daemon: authenticates, then answers the caller's hello with `answer`. */
const fakeDaemon = (answer: (send: (m: Protocol.Message) => void) => void): Promise<Net.Server> =>
  new Promise((resolve) => {
    const server = Net.createServer({ pauseOnConnect: true }, (conn) => {
      conn.on("error", () => {})
      Handshake.accept(conn, "s", Protocol.GREETING).then(
        () => {
          const reader = new FrameReader(
            1 << 20,
            () => answer((m) => writeFrame(conn, CONTROL, Protocol.encode(m))),
            () => conn.destroy()
          )
          conn.on("data", (chunk: Buffer) => reader.push(chunk))
          conn.resume()
        },
        () => conn.destroy()
      )
    })
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const dialTo = (server: Net.Server) =>
  dial({
    address: `127.0.0.1:${(server.address() as Net.AddressInfo).port}`,
    secret: "s",
    connectTimeoutMillis: 5_000,
    link: { heartbeatMillis: 1_000, heartbeatTimeoutMillis: 15_000, maxFrameBytes: 1 << 20 },
    init: { corps: "c", module: "file:///m.ts", envName: "e", index: 0, workers: [], hosts: {}, handleCorps: {} }
  }).pipe(Effect.flip)

describe("dialling a daemon", () => {
  it.live("a daemon of another protocol version is a HostProtocolError naming both", () =>
    Effect.gen(function* () {
      const server = yield* Effect.promise(() => fakeDaemon((send) => send({ type: "hello", protocol: 99 })))
      const error = yield* dialTo(server)
      server.close()
      assert.strictEqual(error._tag, "HostProtocolError")
      assert.include(error.message, "protocol 99")
    })
  )

  it.live("a daemon that answers garbage is a HostProtocolError", () =>
    Effect.gen(function* () {
      const server = yield* Effect.promise(() =>
        fakeDaemon((send) => send({ type: "missing", hashes: [] } as Protocol.Message))
      )
      const error = yield* dialTo(server)
      server.close()
      assert.strictEqual(error._tag, "HostProtocolError")
      assert.include(error.message, "unexpected missing message")
    })
  )

  it.live("an address that is not host:port is refused before dialling", () =>
    Effect.gen(function* () {
      const error = yield* dial({
        address: "nowhere",
        secret: "s",
        connectTimeoutMillis: 100,
        link: { heartbeatMillis: 1_000, heartbeatTimeoutMillis: 15_000, maxFrameBytes: 1 << 20 },
        init: { corps: "c", module: "file:///m.ts", envName: "e", index: 0, workers: [], hosts: {}, handleCorps: {} }
      }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "HostConnectError")
      assert.include(error.message, "not a host:port address")
    })
  )
})

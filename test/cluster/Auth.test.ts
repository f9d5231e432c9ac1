import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger, Option, Redacted } from "effect"
import { RunnerAddress, ShardingConfig } from "effect/cluster"
import { RpcSerialization } from "effect/rpc"
import { acceptHandshake, dialHandshake, layerServerProtocol } from "../../src/cluster/internal/Auth.ts"
import { authenticatedSocket, ports, probeRunner, uvarint } from "./harness.ts"

const SECRET = "auth-test-secret-0123456789"

/**
 * A server running the runner's half with SECRET on one connection: its
 * verdict, the dialer's, and every byte the server read after the handshake
 * (until the dialer ended the connection).
 */
const withServer = async (
  dial: (port: number) => Promise<string>
): Promise<{ readonly server: string; readonly dialer: string; readonly after: string }> => {
  let done: (v: { server: string; after: string }) => void = () => {}
  const served = new Promise<{ server: string; after: string }>((r) => (done = r))
  const server = Net.createServer((conn) => {
    conn.pause()
    conn.on("error", () => {})
    acceptHandshake(conn, SECRET).then(
      () => {
        // Bytes sent right after the handshake are left for the RPC protocol.
        let after = ""
        conn.on("data", (d) => {
          after += d.toString()
        })
        conn.on("end", () => done({ server: "accepted", after }))
        conn.resume()
      },
      (error: Error) => {
        conn.destroy()
        done({ server: error.message, after: "" })
      }
    )
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  const port = (server.address() as Net.AddressInfo).port
  try {
    const dialer = await dial(port)
    const result = await served
    return { server: result.server, dialer, after: result.after }
  } finally {
    server.close()
  }
}

/** Dials with `secret`; on success writes what `then` writes and ends the connection (the server reads to its end). */
const dialWith =
  (secret: string, then?: (conn: Net.Socket) => void) =>
  (port: number): Promise<string> =>
    new Promise((resolve) => {
      const conn = Net.createConnection({ host: "127.0.0.1", port }, () => {
        conn.pause()
        dialHandshake(conn, secret).then(
          () => {
            then?.(conn)
            conn.end()
            resolve("ok")
          },
          (error: Error) => {
            conn.destroy()
            resolve(error.message)
          }
        )
      })
      conn.on("error", () => {})
    })

const raw =
  (bytes: Buffer) =>
  (port: number): Promise<string> =>
    new Promise((resolve) => {
      const conn = Net.createConnection({ host: "127.0.0.1", port }, () => conn.write(bytes))
      conn.on("error", () => {})
      // Consume the greeting: a socket with unread data never sees the peer's close.
      conn.resume()
      conn.on("close", () => resolve("closed"))
    })

describe("cluster/Auth", () => {
  it("both sides prove the secret; later bytes reach the protocol untouched", async () => {
    const result = await withServer(dialWith(SECRET, (conn) => conn.write("FRAME")))
    assert.deepStrictEqual(result, { server: "accepted", dialer: "ok", after: "FRAME" })
  })

  it("a wrong secret is refused by the runner, and the dialer learns it", async () => {
    const result = await withServer(dialWith("not-the-secret-0123456789"))
    assert.strictEqual(result.server, "wrong secret")
    assert.match(result.dialer, /closed|did not prove/)
  })

  it("garbage and oversized lines are refused without waiting for the timeout", async () => {
    const garbage = await withServer(raw(Buffer.from([0, 1, 2, 255, 10])))
    assert.strictEqual(garbage.server, "malformed handshake")
    const long = await withServer(raw(Buffer.alloc(4096, 65)))
    assert.strictEqual(long.server, "handshake line too long")
  })
})

// ---------------------------------------------------------------------------
// After the handshake: the runners' RPC protocol, on real sockets
// ---------------------------------------------------------------------------

const FRAME_TIMEOUT_MS = 300

const probe = (port: number, bytes: Buffer) => probeRunner(port, SECRET, bytes)
const authenticated = (port: number) => authenticatedSocket(port, SECRET)

/** A runner's RPC protocol alone (no cluster, no storage), with the framing guards; collects its log lines. */
const protocolServer = (port: number, logs: Array<string>) =>
  layerServerProtocol(Redacted.make(SECRET), undefined, FRAME_TIMEOUT_MS).pipe(
    Layer.provide(ShardingConfig.layer({ runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", port)) })),
    Layer.provide(RpcSerialization.layerSchemaBinary()),
    Layer.provide(
      Logger.layer([
        Logger.make(({ message }) => logs.push(Array.isArray(message) ? message.join(" ") : String(message)))
      ])
    )
  )

const withProtocol = <A>(run: (port: number, logs: ReadonlyArray<string>) => Promise<A>) =>
  Effect.gen(function* () {
    const port = ports(1)[0]!
    const logs: Array<string> = []
    yield* Layer.build(protocolServer(port, logs))
    return yield* Effect.promise(() => run(port, logs))
  }).pipe(Effect.scoped)

describe("cluster/Auth: framed socket after the handshake", () => {
  it.live("garbage gets one error frame, then the peer is dropped", () =>
    withProtocol(async (port, logs) => {
      const outcome = await probe(port, Buffer.from("this is not a cluster frame, not even close\n".repeat(20)))
      assert.deepStrictEqual(outcome, { frames: 1, closed: true })
      assert.strictEqual(logs.filter((l) => l.includes("dropped connection")).length, 1)
      assert.match(logs.join("\n"), /dropped connection from 127\.0\.0\.1:\d+: malformed frame/)
    })
  )

  it.live("a frame over the size limit gets one error frame, then the peer is dropped", () =>
    withProtocol(async (port) => {
      // A header announcing a 17 MiB frame (the limit is 16 MiB), and the start of its body.
      const outcome = await probe(port, Buffer.concat([uvarint(17 * 1024 * 1024), Buffer.alloc(1024, 1)]))
      assert.deepStrictEqual(outcome, { frames: 1, closed: true })
    })
  )

  it.live("an 8 MiB flood is answered at most once, not once per chunk, and the peer is dropped", () =>
    withProtocol(async (port, logs) => {
      const outcome = await probe(port, Buffer.alloc(8 * 1024 * 1024, 0x41))
      assert.isTrue(outcome.closed)
      // The runner closes with the flood's tail unread, so its one error frame may be lost to the reset.
      assert.isAtMost(outcome.frames, 1)
      assert.strictEqual(logs.filter((l) => l.includes("dropped connection")).length, 1)
    })
  )

  it.live("an incomplete frame followed by silence is dropped after the frame timeout; an idle peer is not", () =>
    withProtocol(async (port, logs) => {
      const idle = await authenticated(port)
      let idleClosed = false
      idle.once("close", () => {
        idleClosed = true
      })
      // A header announcing 100 bytes, then 10 of them, then nothing.
      const outcome = await probe(port, Buffer.concat([uvarint(100), Buffer.alloc(10, 1)]))
      assert.deepStrictEqual(outcome, { frames: 0, closed: true })
      assert.match(logs.join("\n"), new RegExp(`frame incomplete for ${FRAME_TIMEOUT_MS} ms`))
      // Connected before the other peer's frame began, so it has been idle longer than the frame timeout.
      assert.isFalse(idleClosed)
      idle.destroy()
    })
  )
})

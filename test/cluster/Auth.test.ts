import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { acceptHandshake, dialHandshake } from "../../src/cluster/internal/Auth.ts"

const SECRET = "auth-test-secret-0123456789"

/** A server running the runner's half with SECRET; resolves with its verdict on the first connection. */
const withServer = async (
  dial: (port: number) => Promise<string>
): Promise<{ readonly server: string; readonly dialer: string; readonly after: string }> => {
  let verdict: (v: string) => void = () => {}
  const serverVerdict = new Promise<string>((r) => (verdict = r))
  let afterHandshake = ""
  const server = Net.createServer((conn) => {
    conn.pause()
    conn.on("error", () => {})
    acceptHandshake(conn, SECRET).then(
      () => {
        verdict("accepted")
        // Bytes sent right after the handshake are left for the RPC protocol.
        conn.on("data", (d) => {
          afterHandshake += d.toString()
        })
        conn.resume()
      },
      (error: Error) => {
        verdict(error.message)
        conn.destroy()
      }
    )
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  const port = (server.address() as Net.AddressInfo).port
  try {
    const dialer = await dial(port)
    const result = await serverVerdict
    await new Promise((r) => setTimeout(r, 50))
    return { server: result, dialer, after: afterHandshake }
  } finally {
    server.close()
  }
}

const dialWith =
  (secret: string, then?: (conn: Net.Socket) => void) =>
  (port: number): Promise<string> =>
    new Promise((resolve) => {
      const conn = Net.createConnection({ host: "127.0.0.1", port }, () => {
        conn.pause()
        dialHandshake(conn, secret).then(
          () => {
            then?.(conn)
            setTimeout(() => conn.destroy(), 30)
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

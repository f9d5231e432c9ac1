/**
 * The shared-secret handshake of every effect-corps socket (cluster runners,
 * `corps host` daemons), run on the raw TCP (or TLS) stream before any
 * protocol byte:
 *
 * ```
 * server → dialer   <GREETING> <nonceS>\n
 * dialer → server   <nonceD> <HMAC(secret, "dialer|nonceS|nonceD")>\n
 * server → dialer   OK <HMAC(secret, "runner|nonceS|nonceD")>\n
 * ```
 *
 * Nonces are fresh per connection (no replay), both sides prove the secret
 * (a fake server is refused too), the secret never travels, and comparisons
 * are constant-time. The greeting names the protocol (`CORPS-CLUSTER/1`,
 * `CORPS-HOST/1`), so a cluster dialer never mistakes a daemon for a runner.
 * Moved here from `cluster/internal/Auth.ts` so that both use one copy.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import { readFileSync } from "node:fs"
import type * as Net from "node:net"

/** Longest handshake line accepted: anything longer is not a peer of ours. */
const MAX_LINE = 256
/** A peer that has not completed the handshake by then is dropped. */
export const HANDSHAKE_TIMEOUT_MS = 5_000

const mac = (secret: string, role: "dialer" | "runner", nonceS: string, nonceD: string): string =>
  createHmac("sha256", secret).update(`${role}|${nonceS}|${nonceD}`).digest("hex")

const sameHex = (a: string, b: string): boolean => {
  const x = Buffer.from(a, "utf8")
  const y = Buffer.from(b, "utf8")
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * Reads one `\n`-terminated line from a paused socket, without consuming any
 * byte after it (those are pushed back for the protocol that follows).
 */
const readLine = (conn: Net.Socket, timeoutMs: number): Promise<string> =>
  new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0)
    const timer = setTimeout(() => done(new Error("handshake timed out")), timeoutMs)
    const done = (error: Error | undefined, line?: string, rest?: Buffer) => {
      clearTimeout(timer)
      conn.off("readable", onReadable)
      conn.off("end", onEnd)
      conn.off("close", onEnd)
      conn.off("error", onError)
      if (rest !== undefined && rest.length > 0) conn.unshift(rest)
      if (error !== undefined) reject(error)
      else resolve(line!)
    }
    const onReadable = () => {
      let chunk: Buffer | null
      while ((chunk = conn.read() as Buffer | null) !== null) {
        buffered = Buffer.concat([buffered, chunk])
        const end = buffered.indexOf(10)
        if (end >= 0) {
          if (end > MAX_LINE) return done(new Error("handshake line too long"))
          return done(undefined, buffered.subarray(0, end).toString("utf8"), buffered.subarray(end + 1))
        }
        if (buffered.length > MAX_LINE) return done(new Error("handshake line too long"))
      }
    }
    const onEnd = () => done(new Error("connection closed during handshake"))
    const onError = (error: Error) => done(error)
    conn.on("readable", onReadable)
    conn.on("end", onEnd)
    conn.on("close", onEnd)
    conn.on("error", onError)
    onReadable()
  })

/**
 * The serving half of the handshake. Resolves when the dialer proved the
 * secret; rejects with `"wrong secret"`, `"malformed handshake"`, a timeout…
 */
export const accept = async (
  conn: Net.Socket,
  secret: string,
  greeting: string,
  timeoutMs = HANDSHAKE_TIMEOUT_MS
): Promise<void> => {
  const nonceS = randomBytes(16).toString("hex")
  conn.write(`${greeting} ${nonceS}\n`)
  const line = await readLine(conn, timeoutMs)
  const [nonceD, proof, ...extra] = line.split(" ")
  if (extra.length > 0 || nonceD === undefined || proof === undefined || !/^[0-9a-f]{32}$/.test(nonceD)) {
    throw new Error("malformed handshake")
  }
  if (!sameHex(proof, mac(secret, "dialer", nonceS, nonceD))) throw new Error("wrong secret")
  conn.write(`OK ${mac(secret, "runner", nonceS, nonceD)}\n`)
}

/**
 * Why a dialer's handshake failed: the peer does not speak the protocol, or
 * it does not know the secret (it refused ours, or could not prove its own).
 */
export class HandshakeRefused extends Error {
  readonly reason: "not-a-peer" | "wrong-secret"
  constructor(reason: "not-a-peer" | "wrong-secret", message: string) {
    super(message)
    this.reason = reason
  }
}

/** The dialing half of the handshake. Resolves when the server proved the secret. */
export const dial = async (
  conn: Net.Socket,
  secret: string,
  greeting: string,
  timeoutMs = HANDSHAKE_TIMEOUT_MS
): Promise<void> => {
  const line = await readLine(conn, timeoutMs)
  const [hello, nonceS, ...extra] = line.split(" ")
  if (hello !== greeting || nonceS === undefined || extra.length > 0 || !/^[0-9a-f]{32}$/.test(nonceS)) {
    throw new HandshakeRefused(
      "not-a-peer",
      greeting === "CORPS-CLUSTER/1"
        ? "the peer is not an authenticated effect-corps runner"
        : `the peer does not speak ${greeting}`
    )
  }
  const nonceD = randomBytes(16).toString("hex")
  conn.write(`${nonceD} ${mac(secret, "dialer", nonceS, nonceD)}\n`)
  // A server that finds our proof wrong closes the connection without a word.
  const reply = await readLine(conn, timeoutMs).catch((error: Error) => {
    throw /closed during handshake/.test(error.message)
      ? new HandshakeRefused("wrong-secret", "the peer closed the connection: it refused our secret")
      : error
  })
  const [ok, proof] = reply.split(" ")
  if (ok !== "OK" || proof === undefined || !sameHex(proof, mac(secret, "runner", nonceS, nonceD))) {
    throw new HandshakeRefused(
      "wrong-secret",
      greeting === "CORPS-CLUSTER/1"
        ? "the runner did not prove the cluster secret"
        : "the peer did not prove the secret"
    )
  }
}

/**
 * TLS settings: PEM contents of a key, a certificate and a CA.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tls {
  readonly key?: string | undefined
  readonly cert?: string | undefined
  readonly ca?: string | undefined
}

/**
 * Reads TLS settings from PEM files; undefined when no path is given.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tlsFromFiles = (key?: string, cert?: string, ca?: string): Tls | undefined =>
  key === undefined && cert === undefined && ca === undefined
    ? undefined
    : {
        key: key === undefined ? undefined : readFileSync(key, "utf8"),
        cert: cert === undefined ? undefined : readFileSync(cert, "utf8"),
        ca: ca === undefined ? undefined : readFileSync(ca, "utf8")
      }

/**
 * The dialing side of an ExtCorps connection: connect (TCP or TLS), prove
 * the secret, say hello, read the welcome. The socket then becomes the
 * connection's Link (src/node/transport/Socket.ts). Shared by
 * `Corps.connect` and `corps call`.
 */
import type { Effect } from "effect"
import { ExtConnectError } from "../CorpsError.ts"
import { dialControl } from "../node/transport/dial.ts"
import type { Link } from "../node/transport/Link.ts"
import {
  DEFAULT_HEARTBEAT_MILLIS,
  DEFAULT_HEARTBEAT_TIMEOUT_MILLIS,
  DEFAULT_MAX_FRAME_BYTES
} from "../node/transport/Socket.ts"
import * as Protocol from "./protocol.ts"

/** Options of {@link dial}. */
export interface DialOptions {
  readonly address: string
  readonly secret: string
  /** Speak TLS, verifying the server's certificate against `ca` (the system's CAs when absent). */
  readonly tls?: { readonly ca?: string | undefined } | undefined
  readonly timeoutMillis: number
  /** This program's Corps ids (for handles it passes). */
  readonly corps: ReadonlyArray<string>
  /** Ask for each method's JSON Schemas too (`corps call --describe`). */
  readonly describe?: boolean | undefined
  readonly heartbeatMillis?: number | undefined
  readonly heartbeatTimeoutMillis?: number | undefined
}

/** An opened connection: its link and what the server said it serves. */
export interface Dialed {
  readonly link: Link
  readonly welcome: Extract<Protocol.Message, { type: "welcome" }>
}

/** Opens one connection to the Corps served at `options.address`. Interrupting it drops the socket. */
export const dial = (options: DialOptions): Effect.Effect<Dialed, ExtConnectError> => {
  const address = options.address
  const fail = (reason: ExtConnectError["reason"], detail: string) => new ExtConnectError({ address, reason, detail })
  const link = {
    heartbeatMillis: options.heartbeatMillis ?? DEFAULT_HEARTBEAT_MILLIS,
    heartbeatTimeoutMillis: options.heartbeatTimeoutMillis ?? DEFAULT_HEARTBEAT_TIMEOUT_MILLIS,
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES
  }
  return dialControl<Protocol.Message, Dialed, ExtConnectError>({
    address,
    secret: options.secret,
    greeting: Protocol.GREETING,
    tls: options.tls,
    timeoutMillis: options.timeoutMillis,
    maxFrameBytes: link.maxFrameBytes,
    peer: "server",
    awaiting: "its welcome",
    decode: Protocol.decode,
    hello: {
      type: "hello",
      protocol: Protocol.PROTOCOL,
      corps: options.corps,
      ...(options.describe === true ? { describe: true } : {})
    },
    fault: (fault) => {
      switch (fault.kind) {
        case "address":
          return fail("unreachable", "not a host:port address")
        case "timeout":
          return fail("unreachable", `no answer within ${options.timeoutMillis} ms`)
        case "socket":
          return fail(fault.reason, fault.detail)
        case "handshake":
          return fail(
            fault.refused === "wrong-secret"
              ? "authentication"
              : fault.refused === "not-a-peer"
                ? "protocol"
                : "unreachable",
            fault.detail
          )
        case "control":
          return fail("protocol", fault.detail)
      }
    },
    control: (message, step) => {
      if (message.type === "error") return step.fail(fail("protocol", message.reason))
      if (message.type !== "welcome") return step.fail(fail("protocol", `unexpected ${message.type} message`))
      if (message.protocol !== Protocol.PROTOCOL)
        return step.fail(
          fail("protocol", `the server speaks protocol ${message.protocol}, this program ${Protocol.PROTOCOL}`)
        )
      step.open({ ...link, peer: `program at ${address}` }, (opened) => ({ link: opened, welcome: message }))
    }
  })
}

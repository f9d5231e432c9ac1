/**
 * The ExtCorps protocol: how a program reaches the Workers another program
 * serves with `Corps.serve` (docs/external.md).
 *
 * The connection is the one of hosts and runners: TCP (or TLS), the
 * shared-secret handshake of src/internal/auth.ts with its own greeting,
 * then length-prefixed frames (src/node/transport/Socket.ts). Two CONTROL
 * frames open it:
 *
 * ```
 * dialer → server   hello    { protocol, corps }            the dialer's Corps ids
 * server → dialer   welcome  { protocol, corps, workers }   each served Worker: its Corps id and method hashes
 * ```
 *
 * after which BATCH frames carry calls in BOTH directions over the one
 * socket (src/node/duplex.ts): the dialer calls the served Workers, and
 * either side calls the other's Workers whose handles it was given. A
 * Worker is addressed as `name` (a served Worker) or `name@corpsId` (a
 * handle); `$ext` control calls announce Corps ids created later, and
 * `$json` calls carry JSON payloads decoded by the server (`corps call`).
 * The dialer compares the method hashes with its own contracts before the
 * first call (src/external/contract.ts).
 */
import { decodeControl, encodeControl } from "../node/transport/dial.ts"
import type { MethodDescription } from "./contract.ts"

/** The handshake greeting of served Corps. */
export const GREETING = "CORPS-EXT/1"
/** The version of the control messages. */
export const PROTOCOL = 1

/** The pseudo-Worker of control calls on an ExtCorps link (`corps` announces Corps ids). */
export const CONTROL = "$ext"
/** The pseudo-Worker of calls with JSON payloads (`corps call`); its payload is a {@link JsonCall}. */
export const JSON_CALL = "$json"

/** A served Worker, as the welcome describes it. */
export interface ServedWorker {
  readonly name: string
  readonly corps: string
  readonly hashes: Readonly<Record<string, string>>
  /** The JSON Schemas of its methods, sent when the dialer asked (`describe`). */
  readonly methods?: Readonly<Record<string, MethodDescription>> | undefined
}

/** A call whose payload is JSON, decoded and answered as JSON by the serving side. */
export interface JsonCall {
  readonly worker: string
  readonly key: string
  readonly method: string
  readonly json: unknown
}

/** Every control message. */
export type Message =
  | {
      readonly type: "hello"
      readonly protocol: number
      readonly corps: ReadonlyArray<string>
      readonly describe?: boolean | undefined
    }
  | {
      readonly type: "welcome"
      readonly protocol: number
      readonly corps: ReadonlyArray<string>
      readonly workers: ReadonlyArray<ServedWorker>
    }
  | { readonly type: "error"; readonly reason: string }

/** Encodes a control message. */
export const encode: (message: Message) => Uint8Array = encodeControl

/** Decodes a control message; `undefined` for anything that is not one. */
export const decode = (body: Uint8Array): Message | undefined => {
  const value = decodeControl(body)
  if (value === undefined) return undefined
  const message = value as Record<string, unknown>
  const ids = Array.isArray(message.corps) && message.corps.every((id) => typeof id === "string")
  switch (message.type) {
    case "hello":
      return typeof message.protocol === "number" && ids ? (value as Message) : undefined
    case "welcome":
      return typeof message.protocol === "number" &&
        ids &&
        Array.isArray(message.workers) &&
        message.workers.every(
          (w: unknown) =>
            typeof w === "object" &&
            w !== null &&
            typeof (w as ServedWorker).name === "string" &&
            typeof (w as ServedWorker).corps === "string" &&
            typeof (w as ServedWorker).hashes === "object"
        )
        ? (value as Message)
        : undefined
    case "error":
      return typeof message.reason === "string" ? (value as Message) : undefined
    default:
      return undefined
  }
}

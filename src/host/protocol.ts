/**
 * The control protocol between a caller and a `corps host` daemon, spoken on
 * the authenticated connection before it becomes the Env's call link
 * (CONTROL frames of src/node/transport/Socket.ts, each a `v8.serialize`d
 * message):
 *
 * ```
 * caller → daemon   hello    { protocol }
 * daemon → caller   hello    { protocol, node }           | error
 * caller → daemon   manifest { manifest }                 (code shipping: shipping.ts)
 * daemon → caller   missing  { hashes }                   the files its cache lacks
 * caller → daemon   file     { hash, bytes }              one per missing file (hash checked)
 * caller → daemon   start    { init, link, bundle }       bundle: the manifest's hash
 * daemon            checks the files and packages, forks the Env's process
 * daemon            forks the Env's process, hands it the socket
 * Env    → caller   attached                              | daemon → caller: error
 * ```
 *
 * After `attached` the same socket carries BATCH and PING frames between
 * the caller and the Env's process directly: the daemon is out of the path
 * (with TLS it pipes the decrypted bytes; see Daemon.ts).
 */
import type { EnvInit } from "../node/envInit.ts"
import { decodeControl, encodeControl } from "../node/transport/dial.ts"

/** The version of this protocol: a daemon refuses a caller of another one. */
export const PROTOCOL = 1
/** The handshake greeting of daemons (src/internal/auth.ts). */
export const GREETING = "CORPS-HOST/1"
/** The environment variable that tells envMain it was started by a daemon and awaits its socket. */
export const CHILD_VARIABLE = "CORPS_HOST_CHILD"

/** How the Env's end of the link behaves: the caller's settings, applied in the Env's process. */
export interface LinkSettings {
  readonly heartbeatMillis: number
  readonly heartbeatTimeoutMillis: number
  readonly maxFrameBytes: number
}

/** What a caller asks a daemon to start. */
export interface Start {
  readonly type: "start"
  readonly init: EnvInit
  readonly link: LinkSettings
  /** The V8 old-space limit of the Env's process, in MiB. */
  readonly maxOldSpaceSizeMb?: number | undefined
  /** The hash of the shipped program's manifest (sent before): the process imports it from the cache. */
  readonly bundle?: string | undefined
}

/** Every control message. */
export type Message =
  | { readonly type: "hello"; readonly protocol: number; readonly node?: string; readonly version?: string }
  | Start
  | { readonly type: "manifest"; readonly manifest: unknown }
  | { readonly type: "missing"; readonly hashes: ReadonlyArray<string> }
  | { readonly type: "file"; readonly hash: string; readonly bytes: Uint8Array }
  | { readonly type: "attached" }
  | { readonly type: "error"; readonly reason: string; readonly package?: string | undefined }

/** What a daemon hands the Env's process along with the socket (an IPC message). */
export interface Handover {
  readonly type: "corps-socket"
  /** Bytes the daemon had read past the `start` message (base64). */
  readonly leftover: string
  readonly link: LinkSettings
  /** The socket comes as file descriptor 4 (a pipe the daemon feeds from a TLS socket), not as a handle. */
  readonly piped: boolean
}

/** Encodes a control message. */
export const encode: (message: Message) => Uint8Array = encodeControl

/** Decodes a control message; `undefined` for anything that is not one. */
export const decode = (body: Uint8Array): Message | undefined => {
  const value = decodeControl(body)
  if (value === undefined) return undefined
  const type = (value as { type?: unknown }).type
  switch (type) {
    case "hello":
      return typeof (value as { protocol?: unknown }).protocol === "number" ? (value as Message) : undefined
    case "start": {
      const start = value as Partial<Start>
      return typeof start.init === "object" &&
        start.init !== null &&
        typeof start.init.module === "string" &&
        typeof start.link === "object" &&
        start.link !== null
        ? (value as Message)
        : undefined
    }
    case "manifest":
      return "manifest" in value ? (value as Message) : undefined
    case "missing":
      return Array.isArray((value as { hashes?: unknown }).hashes) ? (value as Message) : undefined
    case "file": {
      const file = value as { hash?: unknown; bytes?: unknown }
      return typeof file.hash === "string" && file.bytes instanceof Uint8Array ? (value as Message) : undefined
    }
    case "attached":
      return value as Message
    case "error":
      return typeof (value as { reason?: unknown }).reason === "string" ? (value as Message) : undefined
    default:
      return undefined
  }
}

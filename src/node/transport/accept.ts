/**
 * The serving side's start of every framed effect-corps socket (`corps host`
 * daemons, ExtCorps servers): the peer must prove the shared secret
 * (src/internal/auth.ts) and finish its setup in time, and a reset of a
 * stranger must never become an uncaught exception. One copy, so both
 * servers refuse the same way; what follows the handshake is each
 * protocol's own.
 */
import type * as Net from "node:net"
import * as Handshake from "../../internal/auth.ts"
import { messageOf } from "../../internal/message.ts"

/** Options of {@link acceptAuthenticated}. */
export interface AcceptOptions {
  readonly secret: string
  /** The handshake greeting of the protocol. */
  readonly greeting: string
  /** How long the peer has for the handshake and its setup (until `settled` is called). */
  readonly setupMillis: number
  /** Why a peer too slow for `setupMillis` is refused. */
  readonly late: string
  /** Refuses the peer (logs, counts, destroys the socket): a failed handshake or a late setup. */
  readonly refuse: (reason: string) => void
  /** The peer proved the secret; the socket is paused. Call `settled` once its setup is done. */
  readonly authenticated: (settled: () => void) => void
}

/** Runs the handshake on a freshly accepted connection. */
export const acceptAuthenticated = (conn: Net.Socket, options: AcceptOptions): void => {
  conn.on("error", () => {})
  conn.pause()
  const setup = setTimeout(() => options.refuse(options.late), options.setupMillis)
  const settled = () => clearTimeout(setup)
  conn.once("close", settled)
  Handshake.accept(conn, options.secret, options.greeting).then(
    () => options.authenticated(settled),
    (error: Error) => {
      settled()
      options.refuse(messageOf(error))
    }
  )
}

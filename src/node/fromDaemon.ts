/**
 * The link of an Env started by a `corps host` daemon: the caller's
 * connection, handed over by the daemon (protocol: src/host/protocol.ts).
 */
import * as Net from "node:net"
import type { Handover } from "../host/protocol.ts"
import * as Protocol from "../host/protocol.ts"
import type { Link } from "./transport/Link.ts"
import { CONTROL, fromSocket, writeFrame } from "./transport/Socket.ts"

/**
 * Waits for the daemon's hand-over, tells the caller the Env is attached,
 * and returns the link over the caller's socket. The process exits when the
 * daemon goes away (its IPC channel closes): an Env never outlives its daemon.
 */
export const fromDaemon = (): Promise<Link> =>
  new Promise((resolve) => {
    process.once("disconnect", () => process.exit(0))
    const onMessage = (message: Handover, handle: unknown) => {
      if (message?.type !== "corps-socket") return
      process.off("message", onMessage)
      const socket = message.piped ? new Net.Socket({ fd: 4, readable: true, writable: true }) : (handle as Net.Socket)
      socket.on("error", () => {})
      writeFrame(socket, CONTROL, Protocol.encode({ type: "attached" }))
      resolve(
        fromSocket(socket, {
          ...message.link,
          leftover: Buffer.from(message.leftover, "base64"),
          peer: "caller"
        })
      )
    }
    process.on("message", onMessage)
  })

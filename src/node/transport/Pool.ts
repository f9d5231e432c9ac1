/**
 * Dispatches calls over several Clients (one per Env of a pool of threads or
 * processes): each call goes to the least-loaded client, or to a pinned one.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { CallLost } from "../../CorpsError.ts"
import type { CallRequest, Client } from "./Client.ts"
import type { ReplyExit } from "./Frame.ts"

/**
 * A fixed set of Clients with least-loaded dispatch.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pool {
  /** The clients, in the order given to {@link makePool}; indexes are stable. */
  readonly clients: ReadonlyArray<Client>
  /**
   * Sends a call to the open client with the fewest calls in flight (ties go
   * round robin). Fails with `CallLost` only when every client is closed.
   */
  readonly call: (request: CallRequest) => Effect.Effect<ReplyExit, CallLost>
  /** Sends a call to client `index`, e.g. for a stateful instance that lives in one Env. */
  readonly callOn: (index: number, request: CallRequest) => Effect.Effect<ReplyExit, CallLost>
  /** The calls in flight of each client, by index (a fresh snapshot each time). */
  readonly inFlight: () => ReadonlyArray<number>
}

/**
 * Makes a Pool over `clients` (at least one). The pool does not own them:
 * closing is up to whoever made the clients.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makePool = (clients: ReadonlyArray<Client>): Pool => {
  if (clients.length === 0) throw new Error("makePool: a pool needs at least one client")
  const size = clients.length
  let next = 0

  // Least-loaded rather than "fill the first one": the stock RPC worker
  // protocol fills one worker up to its concurrency before using the next.
  const pick = (): Client => {
    const start = next
    next = next + 1 === size ? 0 : next + 1
    let best: Client | undefined
    let bestLoad = Number.POSITIVE_INFINITY
    for (let k = 0, i = start; k < size; k++, i = i + 1 === size ? 0 : i + 1) {
      const client = clients[i]!
      if (client.closeReason !== undefined) continue
      const load = client.inFlight
      if (load < bestLoad) {
        best = client
        bestLoad = load
        if (load === 0) break
      }
    }
    // Every client is closed: the first one fails the call with its CallLost.
    return best ?? clients[0]!
  }

  return {
    clients,
    // The client is chosen when the effect runs, not when it is built, so a
    // call effect can be run many times.
    call: (request) => Effect.callback((resume) => pick().register(request, resume)),
    callOn: (index, request) => {
      const client = clients[index]
      if (client === undefined) return Effect.die(new RangeError(`no client at index ${index} (size ${size})`))
      return client.call(request)
    },
    inFlight: () => clients.map((client) => client.inFlight)
  }
}

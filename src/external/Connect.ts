/**
 * `Corps.connect`: typed handles, in this program, to Workers another
 * program serves with `Corps.serve` (docs/external.md).
 *
 * The Layer opens one connection and checks it before providing anything:
 * every contract must be served there (else `WorkerNotServed`) with the same
 * method hashes (else `ContractMismatch`, naming the methods). A server that
 * is not up yet (refused, unreachable) is dialed again with backoff until
 * `connectTimeoutMillis`. Once open, a lost connection is dialed again with
 * backoff for as long as the Layer lives; meanwhile calls fail at once with
 * `CallLost { mayHaveRun: false }`, calls in flight when it broke with
 * `CallLost { mayHaveRun: true }`, and calls of `idempotent` methods are
 * sent again under their retry policy, which is what waits for the
 * reconnection.
 */
import { Context, Duration, Effect, Fiber, Layer } from "effect"
import type { ServedIds as Ids } from "../Corps.ts"
import { ContractMismatch, ExtConnectError, WorkerNotServed } from "../CorpsError.ts"
import { remoteTarget } from "../internal/dispatch.ts"
import type { HandleBase, WorkerEntry } from "../internal/handle.ts"
import { secretOfOptions } from "../internal/secret.ts"
import type { AnyWorker } from "../Worker.ts"
import { differing, hashes } from "./contract.ts"
import { dial } from "./dial.ts"
import { localCorps, open, type Peer, retrying, sender } from "./Peer.ts"
import type * as Protocol from "./protocol.ts"

/**
 * Options of `Corps.connect`.
 *
 * @since 0.4.0
 * @category models
 */
export interface ConnectOptions {
  /** `host:port` of the program's `Corps.serve`. */
  readonly address: string
  /** The shared secret of that `Corps.serve`. Give this or `secretFile`. */
  readonly secret?: string | undefined
  /** A file holding the secret (a trailing newline is ignored). */
  readonly secretFile?: string | undefined
  /** Speak TLS, checking the server's certificate against `ca` (PEM; the system's CAs when absent). */
  readonly tls?: { readonly ca?: string | undefined } | undefined
  /** How long the first connection may take, retries of a server not up yet included. Default 10000 ms. */
  readonly connectTimeoutMillis?: number | undefined
  /** The longest wait between two reconnection attempts. Default 2000 ms. */
  readonly reconnectCapMillis?: number | undefined
  /** A ping after this long without sending; default 1000 ms. */
  readonly heartbeatMillis?: number | undefined
  /** A connection silent for this long is closed; default 15000 ms. */
  readonly heartbeatTimeoutMillis?: number | undefined
}

/** Errors that can end `Corps.connect`'s Layer build. */
export type ConnectError = ExtConnectError | ContractMismatch | WorkerNotServed

const DEFAULT_CONNECT_TIMEOUT_MILLIS = 10_000
const FIRST_DELAY_MILLIS = 50

/** What the welcome says against the contracts: the first problem found, or undefined. */
const check = (
  address: string,
  contracts: ReadonlyArray<AnyWorker>,
  welcome: Extract<Protocol.Message, { type: "welcome" }>
): WorkerNotServed | ContractMismatch | undefined => {
  const served = new Map(welcome.workers.map((w) => [w.name, w]))
  const missing = contracts.filter((c) => !served.has(c.key)).map((c) => c.key)
  if (missing.length > 0) return new WorkerNotServed({ address, workers: missing, served: [...served.keys()] })
  for (const contract of contracts) {
    const methods = differing(hashes(contract), served.get(contract.key)!.hashes)
    if (methods.length > 0) return new ContractMismatch({ address, worker: contract.key, methods })
  }
  return undefined
}

/**
 * The Layer of `Corps.connect` (see there).
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = <const Contracts extends ReadonlyArray<AnyWorker>>(
  contracts: Contracts,
  options: ConnectOptions
): Layer.Layer<Ids<Contracts[number]>, ConnectError> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const address = options.address
      const secret = yield* secretOfOptions(options).pipe(
        Effect.mapError((detail) => new ExtConnectError({ address, reason: "authentication", detail }))
      )
      const scope = yield* Effect.scope
      const name = `program at ${address}`
      let current: Peer | undefined
      let label = address
      let servedCorps = new Map<string, string>()
      const connectOnce: Effect.Effect<Peer, ConnectError> = Effect.gen(function* () {
        const dialed = yield* dial({
          address,
          secret,
          tls: options.tls,
          timeoutMillis: options.connectTimeoutMillis ?? DEFAULT_CONNECT_TIMEOUT_MILLIS,
          corps: localCorps(),
          heartbeatMillis: options.heartbeatMillis,
          heartbeatTimeoutMillis: options.heartbeatTimeoutMillis
        })
        const problem = check(address, contracts, dialed.welcome)
        if (problem !== undefined) {
          yield* dialed.link.close
          return yield* problem
        }
        label = dialed.welcome.workers[0]?.corps ?? address
        servedCorps = new Map(dialed.welcome.workers.map((w) => [w.name, w.corps]))
        return yield* open(
          { link: dialed.link, name, exposed: new Map(), peerCorps: dialed.welcome.corps, label },
          scope
        )
      })
      const retryable = (error: ConnectError) =>
        error._tag === "ExtConnectError" && (error.reason === "refused" || error.reason === "unreachable")

      // The first connection: a server not up yet is waited for, anything else fails the Layer.
      const deadline = Date.now() + (options.connectTimeoutMillis ?? DEFAULT_CONNECT_TIMEOUT_MILLIS)
      let delay = FIRST_DELAY_MILLIS
      for (;;) {
        const attempt = yield* Effect.result(connectOnce)
        if (attempt._tag === "Success") {
          current = attempt.success
          break
        }
        if (!retryable(attempt.failure) || Date.now() + delay > deadline) return yield* attempt.failure
        yield* Effect.sleep(Duration.millis(delay))
        delay = Math.min(delay * 2, 1_000)
      }
      // Handles carry the Corps id the served Workers had at the first connection.
      const welcomeCorps = servedCorps

      // Then, for as long as the Layer lives: reconnect with backoff whenever the connection is lost.
      const cap = options.reconnectCapMillis ?? 2_000
      const keepConnected = Effect.gen(function* () {
        for (;;) {
          const lost = current
          if (lost !== undefined) {
            const reason = yield* Effect.promise(() => lost.closed)
            if (current === lost) current = undefined
            yield* Effect.logWarning(
              `effect-corps: connection to the Corps at ${address} lost (${reason}); reconnecting`
            )
          }
          let wait = FIRST_DELAY_MILLIS
          for (;;) {
            const attempt = yield* Effect.result(connectOnce)
            if (attempt._tag === "Success") {
              current = attempt.success
              yield* Effect.logInfo(`effect-corps: reconnected to the Corps at ${address}`)
              break
            }
            if (!retryable(attempt.failure))
              yield* Effect.logError(`effect-corps: reconnecting to ${address}: ${attempt.failure.message}`)
            yield* Effect.sleep(Duration.millis(wait))
            wait = Math.min(wait * 2, cap)
          }
        }
      })
      const fiber = yield* Effect.forkIn(keepConnected, scope)
      yield* Effect.addFinalizer(() =>
        Effect.andThen(
          Fiber.interrupt(fiber),
          Effect.suspend(() => current?.close ?? Effect.void)
        )
      )

      let context = Context.empty() as Context.Context<never>
      for (const contract of contracts) {
        const worker = contract.key
        const send = sender(worker, () => current, name)
        const entry: WorkerEntry = {
          corps: welcomeCorps.get(worker) ?? address,
          worker,
          HandleClass: contract.HandleClass,
          target: (key) => retrying(contract, remoteTarget(contract, key, send))
        }
        const handle: HandleBase = new contract.HandleClass(entry, "default", entry.target("default"))
        context = Context.add(context, contract as unknown as Context.Key<never, unknown>, handle)
      }
      return context as Context.Context<Ids<Contracts[number]>>
    })
  )

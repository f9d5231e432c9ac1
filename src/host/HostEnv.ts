/**
 * The `host` Env kind: Workers in processes started by `corps host` daemons
 * on other machines (docs/hosts.md).
 *
 * ```ts
 * import { HostEnv } from "effect-corps/host"
 *
 * const App = Corps.layer([HasherLive], {
 *   module: import.meta.url,
 *   placement: {
 *     envs: { far: { kind: "host", hosts: ["10.0.0.2:7400", "10.0.0.3:7400"], count: 4 } },
 *     workers: { Hasher: "far" }
 *   }
 * }).pipe(Layer.provide(HostEnv.layer))
 * ```
 *
 * A host Env is a pool like a thread or process Env (src/node/EnvPool.ts):
 * the same routing (Funcs to the least-loaded process, Conc keys hashed to
 * theirs), supervision, re-delivery of idempotent calls and monitoring. Only
 * the start differs: each slot dials a daemon (slot `i` the host
 * `hosts[i % hosts.length]`), proves the shared secret, and asks it for a
 * process, whose link is the TCP connection itself (src/node/transport/Socket.ts).
 * A lost link (the process died, the daemon died, or heartbeats stopped) is
 * a lost slot: its calls end by their rules, and the pool dials again with
 * the backoff of the Env's supervision policy.
 *
 * @since 0.4.0
 */
import { readFileSync } from "node:fs"
import { Effect, type Layer } from "effect"
import { EnvStartError } from "../CorpsError.ts"
import type * as Env from "../Env.ts"
import { layer as EnvProviderLayer, type StartRequest } from "../internal/envProvider.ts"
import { messageOf } from "../internal/message.ts"
import { readSecretFile } from "../internal/secret.ts"
import type { Spawned } from "../node/EnvPool.ts"
import { makeProvider } from "../node/NodeEnv.ts"
import {
  DEFAULT_HEARTBEAT_MILLIS,
  DEFAULT_HEARTBEAT_TIMEOUT_MILLIS,
  DEFAULT_MAX_FRAME_BYTES
} from "../node/transport/Socket.ts"
import { dial } from "./dial.ts"
import * as Shipping from "./shipping.ts"

/** How long connecting to a daemon and starting the Env's process may take by default. */
const DEFAULT_CONNECT_TIMEOUT_MILLIS = 10_000

type HostSettings = typeof Env.Host.Type

/** The daemons' secret: the Env's `secretFile`, else `CORPS_HOST_SECRET`. */
const readSecret = (request: StartRequest<"host">): Effect.Effect<string, EnvStartError> =>
  Effect.suspend(() => {
    const fail = (reason: string) =>
      Effect.fail(new EnvStartError({ env: request.envName, module: request.module, reason }))
    const file = request.env.secretFile
    if (file !== undefined) return readSecretFile(file).pipe(Effect.catch(fail))
    const secret = process.env.CORPS_HOST_SECRET
    if (secret === undefined || secret === "")
      return fail("no secret for its hosts: set CORPS_HOST_SECRET, or secretFile in the Env's placement")
    return Effect.succeed(secret)
  })

const readCa = (request: StartRequest<"host">): Effect.Effect<string | undefined, EnvStartError> =>
  Effect.try({
    try: () => (request.env.tls?.ca === undefined ? undefined : readFileSync(request.env.tls.ca, "utf8")),
    catch: (error) =>
      new EnvStartError({
        env: request.envName,
        module: request.module,
        reason: `cannot read the CA file ${request.env.tls?.ca}: ${messageOf(error)}`
      })
  })

const spawner = (request: StartRequest<"host">) =>
  Effect.gen(function* () {
    const env: HostSettings = request.env
    const secret = yield* readSecret(request)
    const ca = yield* readCa(request)
    // Collected once per Env: every slot, and every restart, ships the code this caller runs.
    const shipped =
      env.ship === false
        ? undefined
        : yield* Shipping.collect(request.module).pipe(
            Effect.mapError(
              (error) =>
                new EnvStartError({
                  env: request.envName,
                  module: request.module,
                  reason: `cannot ship the program: ${error.message}`
                })
            )
          )
    const link = {
      heartbeatMillis: env.heartbeatMillis ?? DEFAULT_HEARTBEAT_MILLIS,
      heartbeatTimeoutMillis: env.heartbeatTimeoutMillis ?? DEFAULT_HEARTBEAT_TIMEOUT_MILLIS,
      maxFrameBytes: env.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    }
    return (init: Parameters<typeof dial>[0]["init"], index: number): Effect.Effect<Spawned, EnvStartError> => {
      // A spare (-1) waits on the first host; every slot has its host, round robin.
      const address = env.hosts[Math.max(0, index) % env.hosts.length]!
      return dial({
        address,
        secret,
        ...(env.tls === undefined ? {} : { tls: { ca } }),
        connectTimeoutMillis: env.connectTimeoutMillis ?? DEFAULT_CONNECT_TIMEOUT_MILLIS,
        link,
        init,
        maxOldSpaceSizeMb: env.maxOldSpaceSizeMb,
        shipped
      }).pipe(
        Effect.map(
          (dialed): Spawned => ({
            link: dialed.link,
            diagnosis: { hang: false, memory: false },
            kill: () => dialed.socket.destroy(),
            settled: Promise.resolve()
          })
        ),
        Effect.mapError(
          (error) =>
            new EnvStartError({ env: request.envName, module: request.module, reason: error.message, host: error })
        )
      )
    }
  })

/**
 * Provides the `host` Env kind to the Corps built below it.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer: Layer.Layer<never> = EnvProviderLayer(
  "host",
  makeProvider("host", {
    bounds: (env) => {
      const count = env.count ?? env.hosts.length
      return { min: count, max: count }
    },
    spawner,
    health: (env) => ({
      supervision: env.supervision,
      hangTimeoutMillis: env.hangTimeoutMillis,
      spare: env.spare ?? false,
      maxOldSpaceSizeMb: env.maxOldSpaceSizeMb
    })
  })
)

/**
 * `corps host`: a daemon that starts Envs for authenticated callers
 * (docs/hosts.md), until SIGINT / SIGTERM.
 *
 * ```sh
 * CORPS_HOST_SECRET_FILE=/run/secrets/corps npx corps host --listen 0.0.0.0:7400
 * ```
 *
 * Every flag falls back to an environment variable (`CORPS_HOST_LISTEN`,
 * `CORPS_HOST_SECRET_FILE`, `CORPS_HOST_CACHE_DIR`,
 * `CORPS_HOST_MAX_FRAME_BYTES`, `CORPS_HOST_TLS_KEY`, `CORPS_HOST_TLS_CERT`).
 * The secret itself is read from `CORPS_HOST_SECRET` or from a file, never
 * from a flag, so it never shows in a process list. Prints
 * `corps-host ready <host:port>` on stdout once it listens.
 *
 * @since 0.4.0
 */
import { homedir } from "node:os"
import { join } from "node:path"
import { Config, Effect, type FileSystem, Option, Schema } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import * as Daemon from "../host/Daemon.ts"
import { parseListenAddress } from "../internal/address.ts"
import { type Tls, tlsFromFiles } from "../internal/auth.ts"
import { messageOf } from "../internal/message.ts"
import { secretFileUnlessVariable } from "../internal/secret.ts"

/**
 * The daemon could not start: no secret or two, an unreadable file, an
 * address in use. Printed as one line (no stack trace) by the `corps`
 * command, which then exits with code 1.
 *
 * @since 0.4.0
 * @category errors
 */
export class HostStartError extends Schema.TaggedError<HostStartError>()("CorpsHostStartError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `corps host: ${this.reason}`
  }

  override get [CliError.userMessage](): string {
    return this.message
  }
}

const fromEnv = (variable: string) => Config.String(variable)

const positiveInteger = (value: string): Option.Option<number> => {
  const n = Number(value)
  return /^\d+$/.test(value.trim()) && Number.isSafeInteger(n) && n > 0 ? Option.some(n) : Option.none()
}

/**
 * The flags of `corps host`, each with its environment variable.
 *
 * @since 0.4.0
 * @category flags
 */
export const flags = {
  listen: Flag.String("listen").pipe(
    Flag.withMetavar("host:port"),
    Flag.withDescription("Address to listen on, e.g. 0.0.0.0:7400 (port 0: any free port) [CORPS_HOST_LISTEN]"),
    Flag.withFallbackConfig(fromEnv("CORPS_HOST_LISTEN")),
    Flag.filterMap(
      // Port 0 is allowed here (any free port), unlike a caller's address.
      (address) => Option.fromUndefinedOr(parseListenAddress(address)),
      () => "host:port, with a port from 0 to 65535 (--listen or CORPS_HOST_LISTEN)"
    )
  ),
  secretFile: Flag.String("secret-file").pipe(
    Flag.withMetavar("path"),
    Flag.withDescription("File holding the hosts' secret, instead of CORPS_HOST_SECRET [CORPS_HOST_SECRET_FILE]"),
    Flag.withFallbackConfig(fromEnv("CORPS_HOST_SECRET_FILE")),
    Flag.optional
  ),
  cacheDir: Flag.String("cache-dir").pipe(
    Flag.withMetavar("path"),
    Flag.withDescription("Where shipped code is cached (default ~/.cache/effect-corps/host) [CORPS_HOST_CACHE_DIR]"),
    Flag.withFallbackConfig(fromEnv("CORPS_HOST_CACHE_DIR")),
    Flag.optional
  ),
  maxFrameBytes: Flag.String("max-frame-bytes").pipe(
    Flag.withMetavar("bytes"),
    Flag.withDescription("Largest frame accepted from a caller (default 67108864) [CORPS_HOST_MAX_FRAME_BYTES]"),
    Flag.withFallbackConfig(fromEnv("CORPS_HOST_MAX_FRAME_BYTES")),
    Flag.filterMap(positiveInteger, () => "a positive integer (--max-frame-bytes or CORPS_HOST_MAX_FRAME_BYTES)"),
    Flag.optional
  ),
  tlsKey: Flag.String("tls-key").pipe(
    Flag.withMetavar("path"),
    Flag.withDescription("PEM key: the daemon then speaks TLS only (with --tls-cert) [CORPS_HOST_TLS_KEY]"),
    Flag.withFallbackConfig(fromEnv("CORPS_HOST_TLS_KEY")),
    Flag.optional
  ),
  tlsCert: Flag.String("tls-cert").pipe(
    Flag.withMetavar("path"),
    Flag.withDescription("PEM certificate of the daemon (with --tls-key) [CORPS_HOST_TLS_CERT]"),
    Flag.withFallbackConfig(fromEnv("CORPS_HOST_TLS_CERT")),
    Flag.optional
  )
}

/**
 * What `corps host` was given, once parsed.
 *
 * @since 0.4.0
 * @category models
 */
export interface Input {
  readonly listen: { readonly host: string; readonly port: number }
  readonly secretFile: Option.Option<string>
  readonly cacheDir: Option.Option<string>
  readonly maxFrameBytes: Option.Option<number>
  readonly tlsKey: Option.Option<string>
  readonly tlsCert: Option.Option<string>
}

/**
 * Resolves parsed flags into the daemon's options: reads the secret (file
 * or `CORPS_HOST_SECRET`, not both) and the TLS files.
 *
 * @since 0.4.0
 * @category constructors
 */
export const plan = (input: Input): Effect.Effect<Daemon.DaemonOptions, HostStartError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fromVariable = process.env.CORPS_HOST_SECRET
    let secret = fromVariable === undefined || fromVariable === "" ? undefined : fromVariable
    if (Option.isSome(input.secretFile)) {
      secret = yield* secretFileUnlessVariable("CORPS_HOST_SECRET", secret !== undefined, input.secretFile.value).pipe(
        Effect.mapError((reason) => new HostStartError({ reason }))
      )
    }
    if (secret === undefined) {
      return yield* new HostStartError({ reason: "no secret: set CORPS_HOST_SECRET or give --secret-file" })
    }
    const key = Option.getOrUndefined(input.tlsKey)
    const cert = Option.getOrUndefined(input.tlsCert)
    if ((key === undefined) !== (cert === undefined)) {
      return yield* new HostStartError({ reason: "TLS needs both --tls-key and --tls-cert" })
    }
    const tls: Tls | undefined = yield* Effect.try({
      try: () => tlsFromFiles(key, cert),
      catch: (error) => new HostStartError({ reason: `cannot read the TLS files: ${messageOf(error)}` })
    })
    const maxFrameBytes = Option.getOrUndefined(input.maxFrameBytes)
    return {
      host: input.listen.host,
      port: input.listen.port,
      secret,
      cacheDir: Option.getOrElse(input.cacheDir, () => join(homedir(), ".cache", "effect-corps", "host")),
      ...(tls === undefined ? {} : { tls }),
      ...(maxFrameBytes === undefined ? {} : { maxFrameBytes })
    }
  })

/**
 * Runs the daemon until interrupted; prints `corps-host ready <host:port>`
 * on stdout once it listens.
 *
 * @since 0.4.0
 * @category running
 */
export const serve = (options: Daemon.DaemonOptions): Effect.Effect<never, HostStartError> =>
  Effect.gen(function* () {
    const daemon = yield* Daemon.start(options)
    yield* Effect.logInfo(`corps host: listening on ${daemon.host}:${daemon.port}${options.tls ? " (TLS)" : ""}`)
    process.stdout.write(`corps-host ready ${daemon.host}:${daemon.port}\n`)
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.mapError((error) => new HostStartError({ reason: error.reason }))
  )

/**
 * The `host` sub-command.
 *
 * @since 0.4.0
 * @category commands
 */
export const command = Command.make("host", flags, (input) => Effect.flatMap(plan(input), serve)).pipe(
  Command.withDescription(
    "Serve Envs to authenticated callers (the host Env kind), until SIGINT or SIGTERM. The secret comes from CORPS_HOST_SECRET or --secret-file. Prints `corps-host ready <host:port>` once listening."
  ),
  Command.withExamples([
    {
      command: "corps host --listen 0.0.0.0:7400 --secret-file /run/secrets/corps",
      description: "Serve Envs on port 7400 of every interface"
    }
  ])
)

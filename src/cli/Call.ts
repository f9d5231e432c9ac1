/**
 * `corps call ADDRESS Worker.method '{json}'`: calls a Worker served with
 * `Corps.serve` from the shell, without its contract (docs/external.md).
 *
 * ```sh
 * CORPS_SECRET=s3cret npx corps call 127.0.0.1:7500 Greeter.greet '{"name":"Ada"}'
 * ```
 *
 * The payload travels as JSON and the SERVING program decodes it with the
 * method's Schema (its JSON codec, `Schema.toCodecJson`), so this command
 * needs no contract: a payload that does not fit is refused there with a
 * `SerializationError` naming the issue. The result is printed as JSON (a
 * streaming method: the array of its elements). A typed error is printed as
 * JSON (its `_tag` and fields) on stderr and the command exits with code 1;
 * bad input (not JSON, not `Worker.method`, no secret) is one line and code 1.
 *
 * @since 0.4.0
 */
import { Console, Effect, Option, Schema } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import { dial } from "../external/dial.ts"
import { JSON_CALL } from "../external/protocol.ts"
import { messageOf } from "../internal/message.ts"
import { secretFileUnlessVariable } from "../internal/secret.ts"
import { makeClient } from "../node/transport/Client.ts"

/**
 * `corps call` could not make the call: bad input, no secret, or the served
 * program could not be reached. One line, exit code 1.
 *
 * @since 0.4.0
 * @category errors
 */
export class CallInputError extends Schema.TaggedError<CallInputError>()("CorpsCallInputError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `corps call: ${this.reason}`
  }
  override get [CliError.userMessage](): string {
    return this.message
  }
}

/**
 * The called method failed: `error` is its typed error as JSON (tag and
 * fields), printed as is, exit code 1.
 *
 * @since 0.4.0
 * @category errors
 */
export class CallFailed extends Schema.TaggedError<CallFailed>()("CorpsCallFailed", {
  error: Schema.Unknown
}) {
  override get message(): string {
    return JSON.stringify(this.error)
  }
  override get [CliError.userMessage](): string {
    return this.message
  }
}

/** Runs one call; the answer's JSON text, or why not. */
export const call = (input: {
  readonly address: string
  readonly target: string
  readonly json: string
  readonly key: string
  readonly secret: string
  readonly timeoutMillis?: number | undefined
}): Effect.Effect<string, CallInputError | CallFailed> =>
  Effect.gen(function* () {
    const match = /^([^.\s]+)\.([^.\s]+)$/.exec(input.target)
    if (match === null) return yield* new CallInputError({ reason: `"${input.target}" is not Worker.method` })
    let json: unknown
    try {
      json = JSON.parse(input.json)
    } catch (error) {
      return yield* new CallInputError({ reason: `the payload is not JSON: ${messageOf(error)}` })
    }
    const dialed = yield* dial({
      address: input.address,
      secret: input.secret,
      timeoutMillis: input.timeoutMillis ?? 10_000,
      corps: []
    }).pipe(Effect.mapError((error) => new CallInputError({ reason: error.message })))
    const client = yield* makeClient(dialed.link, { envName: `program at ${input.address}` })
    const exit = yield* client
      .call({
        worker: JSON_CALL,
        key: "",
        method: "call",
        payload: { worker: match[1], key: input.key, method: match[2], json }
      })
      .pipe(
        Effect.mapError((error) => new CallInputError({ reason: error.message })),
        Effect.ensuring(client.close)
      )
    switch (exit._tag) {
      case "Success":
        return JSON.stringify(exit.value, null, 2)
      case "Failure":
        return yield* new CallFailed({ error: exit.error[1] })
      case "Defect":
        return yield* new CallFailed({ error: { _tag: "Defect", defect: exit.defect } })
      case "Interrupted":
        return yield* new CallFailed({ error: { _tag: "Interrupted" } })
    }
  })

// CORPS_SECRET or --secret-file, not both: a secret given twice is refused, as by `corps host` and `corps runner`.
const secretFrom = (file: Option.Option<string>): Effect.Effect<string, CallInputError> =>
  Effect.gen(function* () {
    if (Option.isSome(file))
      return yield* secretFileUnlessVariable("CORPS_SECRET", (process.env.CORPS_SECRET ?? "") !== "", file.value).pipe(
        Effect.mapError((reason) => new CallInputError({ reason }))
      )
    const secret = process.env.CORPS_SECRET
    if (secret !== undefined && secret.length > 0) return secret
    return yield* new CallInputError({ reason: "no secret: set CORPS_SECRET or give --secret-file" })
  })

/**
 * The `call` sub-command.
 *
 * @since 0.4.0
 * @category commands
 */
export const command = Command.make(
  "call",
  {
    address: Argument.String("address").pipe(Argument.withDescription("host:port of a program's Corps.serve")),
    target: Argument.String("worker.method").pipe(
      Argument.withDescription("The Worker and method, e.g. Greeter.greet")
    ),
    json: Argument.String("json").pipe(
      Argument.withDescription('The payload as JSON, e.g. \'{"name":"Ada"}\''),
      Argument.withDefault("null")
    ),
    key: Flag.String("key").pipe(
      Flag.withDescription("The instance key (default: the default instance)"),
      Flag.withDefault("default")
    ),
    secretFile: Flag.String("secret-file").pipe(
      Flag.withDescription("File holding the secret, instead of CORPS_SECRET"),
      Flag.optional
    )
  },
  (input) =>
    Effect.flatMap(secretFrom(input.secretFile), (secret) =>
      Effect.flatMap(
        call({ address: input.address, target: input.target, json: input.json, key: input.key, secret }),
        (out) => Console.log(out)
      )
    )
).pipe(
  Command.withDescription(
    "Call a Worker served with Corps.serve, without its contract: the payload is JSON, decoded by the serving program; prints the result as JSON, or the typed error (exit code 1)."
  ),
  Command.withExamples([
    {
      command: `corps call 127.0.0.1:7500 Greeter.greet '{"name":"Ada"}'`,
      description: "Call Greeter.greet on the default instance"
    }
  ])
)

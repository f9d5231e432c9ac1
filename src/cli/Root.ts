/**
 * The `corps` command: one root with a sub-command per task (`runner`,
 * `host`, `status`, `top`, `call`).
 *
 * @since 0.2.0
 */
import { readFileSync } from "node:fs"
import { Console, Effect, type Layer } from "effect"
import { CliOutput, Command } from "effect/cli"
import * as Call from "./Call.ts"
import * as Host from "./Host.ts"
import * as Runner from "./Runner.ts"
import * as Status from "./Status.ts"
import * as Top from "./Top.ts"

/**
 * The root command, `corps`, with its sub-commands.
 *
 * @since 0.2.0
 * @category commands
 */
export const command = Command.make("corps").pipe(
  Command.withDescription("effect-corps: serve and inspect Corps of typed Workers."),
  Command.withSubcommands([Runner.command, Host.command, Status.command, Top.command, Call.command])
)

/**
 * The package's version (from its package.json, two levels up from both
 * `src/cli/` and `dist/cli/`).
 *
 * @since 0.2.0
 * @category constants
 */
export const version: string = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version

/**
 * Prints a mistake in the invocation as its error lines and a pointer to
 * `--help` on stderr, rather than the whole help text before the error: the
 * error is what the user needs to see, and the help is one flag away.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerPresenter: Layer.Layer<never> = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Effect.gen(function* () {
          const formatter = yield* CliOutput.Formatter
          yield* Console.error(formatter.formatErrors(event.errors))
          yield* Console.error(`Run \`${event.commandPath.join(" ")} --help\` for usage.`)
        })
      : CliOutput.defaultPresenter.present(event)
})

/**
 * Runs `corps` with the process's arguments.
 *
 * @since 0.2.0
 * @category running
 */
export const run = Command.run(command, { version }).pipe(Effect.provide(layerPresenter))

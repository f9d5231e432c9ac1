/**
 * `corps status ADDRESS`: one look at a running Corps through its dashboard
 * (`Dashboard.layer`): its Workers with their calls, latency and errors, its
 * Envs' threads and processes, and its recent events. `--json` prints the
 * Snapshot itself, as `/api/snapshot` serves it.
 *
 * ```sh
 * npx corps status 127.0.0.1:9400
 * npx corps status 127.0.0.1:9400 --json | jq '.corps.workers[].name'
 * ```
 *
 * @since 0.3.0
 */
import { Console, Effect, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Snapshot } from "../monitoring/Snapshot.ts"
import { DashboardReadFailed, fetchSnapshot, render } from "./snapshots.ts"

/**
 * The ADDRESS argument of `corps status` and `corps top`.
 *
 * @since 0.3.0
 * @category arguments
 */
export const address = Argument.String("address").pipe(
  Argument.withDescription("The dashboard's address: host:port (e.g. 127.0.0.1:9400) or an http URL")
)

/**
 * The `status` sub-command.
 *
 * @since 0.3.0
 * @category commands
 */
export const command = Command.make(
  "status",
  {
    address,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print the Snapshot as JSON (the Schema's encoding)"),
      Flag.withDefault(false)
    )
  },
  (input) =>
    fetchSnapshot(input.address).pipe(
      Effect.mapError((error) => new DashboardReadFailed({ command: "status", error })),
      Effect.flatMap((snapshot) =>
        Console.log(
          input.json
            ? JSON.stringify(Schema.encodeSync(Snapshot)(snapshot), null, 2)
            : render(snapshot, { events: 5, color: false })
        )
      )
    )
).pipe(
  Command.withDescription(
    "Print a one-shot summary of a running Corps (Workers, Envs, recent events) read from its dashboard (Dashboard.layer)."
  ),
  Command.withExamples([
    { command: "corps status 127.0.0.1:9400", description: "The summary tables" },
    { command: "corps status 127.0.0.1:9400 --json", description: "The Snapshot as JSON" }
  ])
)

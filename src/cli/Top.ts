/**
 * `corps top ADDRESS`: a terminal view of a running Corps that refreshes
 * every second until Ctrl-C, read from its dashboard (`Dashboard.layer`):
 * the tables of `corps status` plus each Worker's rate of calls, derived
 * from consecutive snapshots. Plain ANSI escapes (clear, colour): no curses.
 *
 * ```sh
 * npx corps top 127.0.0.1:9400
 * ```
 *
 * @since 0.3.0
 */
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import type { DashboardError } from "../CorpsError.ts"
import type { Snapshot } from "../monitoring/Snapshot.ts"
import { address } from "./Status.ts"
import { DashboardReadFailed, fetchSnapshot, render } from "./snapshots.ts"

const CLEAR = "\x1b[H\x1b[2J"

/**
 * The `top` sub-command.
 *
 * @since 0.3.0
 * @category commands
 */
export const command = Command.make(
  "top",
  {
    address,
    frames: Flag.Int("frames").pipe(
      Flag.withDescription("Stop after this many frames (default: run until Ctrl-C)"),
      Flag.filterMap(
        (n) => (Number.isSafeInteger(n) && n > 0 ? Option.some(n) : Option.none()),
        () => "a positive integer"
      ),
      Flag.optional
    ),
    interval: Flag.Int("interval").pipe(
      Flag.withDescription("Milliseconds between frames (default 1000)"),
      Flag.filterMap(
        (n) => (Number.isSafeInteger(n) && n >= 100 ? Option.some(n) : Option.none()),
        () => "an integer of at least 100"
      ),
      Flag.withDefault(1000)
    )
  },
  (input) =>
    Effect.gen(function* () {
      const color = process.stdout.isTTY === true
      let previous: Snapshot | undefined
      let frames = 0
      for (;;) {
        const next = yield* Effect.result(fetchSnapshot(input.address))
        if (next._tag === "Failure") {
          // The first read decides whether there is a dashboard at all; later, a restarting program is waited for.
          if (previous === undefined) return yield* fail(next.failure)
          process.stdout.write(`${CLEAR}${next.failure.message} (retrying)\n`)
        } else {
          const frame = render(next.success, { previous, events: 8, color })
          process.stdout.write(`${color ? CLEAR : ""}${frame}\n${color ? "" : "\n"}`)
          previous = next.success
        }
        frames++
        if (Option.isSome(input.frames) && frames >= input.frames.value) return
        yield* Effect.sleep(input.interval)
      }
    })
).pipe(
  Command.withDescription(
    "Watch a running Corps in the terminal, refreshed every second until Ctrl-C, read from its dashboard (Dashboard.layer)."
  ),
  Command.withExamples([{ command: "corps top 127.0.0.1:9400", description: "Watch the Corps serving that dashboard" }])
)

const fail = (error: DashboardError) => Effect.fail(new DashboardReadFailed({ command: "top", error }))

/**
 * The Worker of `bench/recovery.bench.ts`: `who` names the thread or process
 * that answers (so a reply from the replacement is told from one of the
 * crashed Env), `exit` ends the thread or process it runs in.
 */
import { threadId } from "node:worker_threads"
import { Effect, Schema } from "effect"
import { Worker } from "../../src/index.ts"

/** A stateless Worker that can take its own Env down. */
export class Crashy extends Worker.Service<Crashy>()("Crashy", {
  who: { success: Schema.String },
  exit: {}
}) {}

/** `process.exit` inside a worker thread ends only that thread. */
export const CrashyLive = Crashy.func({
  who: () => `${process.pid}/${threadId}`,
  exit: () => Effect.sync(() => process.exit(1))
})

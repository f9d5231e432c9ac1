/**
 * The supervisor of one Corps in a tree of nested Corps: where the Envs of
 * the Corps escalate when their policy is exhausted with outcome
 * `"escalate"`. The Corps fails (every registered pool refuses its calls
 * with `CorpsFailed`), then the enclosing Corps' supervisor decides: with
 * outcome `"escalate"` it fails too and passes the failure up, with `"stop"`
 * it keeps serving. The outermost Corps has no parent: its failure is final.
 */
import { Context } from "effect"
import { CorpsFailed } from "../CorpsError.ts"
import type { Outcome } from "../Supervision.ts"

/** One Corps' supervisor. */
export class Supervisor {
  readonly corps: string
  readonly parent: Supervisor | undefined
  /** What this Corps does when a nested Corps escalates to it. */
  readonly outcome: Outcome
  private readonly members = new Set<(error: CorpsFailed) => void>()
  private failure: CorpsFailed | undefined

  constructor(corps: string, parent: Supervisor | undefined, outcome: Outcome) {
    this.corps = corps
    this.parent = parent
    this.outcome = outcome
  }

  /** Registers what fails when this Corps fails (a pool's refusal); returns its removal. */
  register(fail: (error: CorpsFailed) => void): () => void {
    if (this.failure !== undefined) fail(this.failure)
    this.members.add(fail)
    return () => this.members.delete(fail)
  }

  /** An Env of this Corps escalated: this Corps fails, then its parent decides. */
  escalate(error: CorpsFailed): void {
    if (this.failure !== undefined) return
    this.failure = error
    for (const fail of [...this.members]) fail(error)
    this.parent?.nested(error)
  }

  /** A nested Corps failed and escalated here. */
  private nested(error: CorpsFailed): void {
    if (this.outcome === "escalate") {
      this.escalate(
        new CorpsFailed({
          corps: this.corps,
          env: error.env,
          reason: `nested Corps ${error.corps} failed: ${error.reason}`
        })
      )
    }
  }
}

/** The supervisor of the Corps in context (each `Corps.layer` provides its own). */
export class CorpsSupervisor extends Context.Service<CorpsSupervisor, Supervisor>()("effect-corps/CorpsSupervisor") {}

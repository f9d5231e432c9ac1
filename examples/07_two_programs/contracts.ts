/** The contracts both programs declare (each program imports this file; no implementation here). */
import { Schema } from "effect"
import { Worker } from "../../src/index.ts"

/** Served by program A. */
export class Ledger extends Worker.Service<Ledger>()("Ledger", {
  record: { payload: { line: Schema.String }, success: Schema.Number }
}) {}

export class TooBig extends Schema.TaggedError<TooBig>()("TooBig", { n: Schema.Number }) {}

/** Served by program B. */
export class Squarer extends Worker.Service<Squarer>()("Squarer", {
  square: { payload: { n: Schema.Number }, success: Schema.Number, error: TooBig },
  squares: { payload: { upTo: Schema.Number }, success: Schema.Number, stream: true }
}) {}

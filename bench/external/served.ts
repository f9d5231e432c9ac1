/** The other program of the cross-program benchmark: serves Inc on 127.0.0.1:0, prints `ready <address>`. */
import { Effect, Layer } from "effect"
import { Corps } from "../../src/index.ts"
import { Inc, IncLive } from "./workers.ts"

const Served = Corps.serve([Inc], { listen: "127.0.0.1:0", secret: process.env.SECRET ?? "bench" }).pipe(
  Layer.provide(Corps.layer([IncLive]))
)

Effect.runFork(
  Effect.andThen(Corps.ServedAt, ({ address }) => Effect.sync(() => process.stdout.write(`ready ${address}\n`))).pipe(
    Effect.andThen(Effect.never),
    Effect.provide(Served)
  )
)

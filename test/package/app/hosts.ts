/**
 * A user's program placing a Conc on a `corps host` daemon (its address is
 * the first argument, its secret in CORPS_HOST_SECRET), as it would be
 * written after `npm install effect-corps`. This file is shipped to the
 * daemon; the library is the daemon's installed package.
 */
import { Effect, Layer, Schema } from "effect"
import { Corps, Worker } from "effect-corps"
import { HostEnv } from "effect-corps/host"

export class Tally extends Worker.Service<Tally>()("Tally", {
  add: { payload: { n: Schema.Number }, success: Schema.Number },
  pid: { success: Schema.Number }
}) {}

export const TallyLive = Tally.conc(
  Effect.sync(() => {
    let total = 0
    return {
      add: ({ n }: { readonly n: number }) => (total += n),
      pid: () => process.pid
    }
  })
)

if (import.meta.main) {
  const App = Corps.layer([TallyLive], {
    module: import.meta.url,
    placement: { envs: { far: { kind: "host", hosts: [process.argv[2]!] } }, default: "far" }
  }).pipe(Layer.provide(HostEnv.layer))
  const program = Effect.gen(function* () {
    const tally = yield* Tally
    for (const n of [1, 2, 3]) yield* tally.add({ n })
    const pid = yield* tally.pid()
    console.log(
      `host: total=${yield* tally.add({ n: 0 })} ${pid !== process.pid ? "in another process" : "NOT elsewhere"}`
    )
  })
  await Effect.runPromise(program.pipe(Effect.provide(App)))
  process.exit(0)
}

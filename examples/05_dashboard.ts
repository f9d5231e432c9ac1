/**
 * 05 — A live dashboard of a running Corps.
 *
 * A Pricer Func runs in 2 worker threads, a Basket Conc in the caller's
 * runtime. The program keeps them busy (a few hundred calls a second, some
 * of them failing with a typed error) and, every 15 seconds, makes one of
 * the threads exit, so that the supervisor's restart shows on the timeline.
 * `Dashboard.layer` serves the page; `Monitoring.layer` records the figures
 * it shows.
 *
 * Prints:
 *
 *   dashboard: http://127.0.0.1:9400/   (also: npx corps top 127.0.0.1:9400)
 *
 * then serves until Ctrl-C (or for DASHBOARD_SECONDS seconds, if set). The
 * port is PORT, or 9400.
 *
 * Run: npm run example:dashboard
 */
import { createHash } from "node:crypto"
import { Console, Effect, Layer, References, Schedule, Schema } from "effect"
import { Corps, Dashboard, Monitoring, Worker } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"

/** No such product. */
class UnknownProduct extends Schema.TaggedError<UnknownProduct>()("UnknownProduct", { sku: Schema.String }) {}

/** Prices products: a little CPU work per call, in a thread. */
class Pricer extends Worker.Service<Pricer>()("Pricer", {
  price: { payload: { sku: Schema.String }, success: Schema.Number, error: UnknownProduct },
  /** Ends the thread it runs in (to show a restart). */
  exit: {}
}) {}

export const PricerLive = Pricer.func({
  price: ({ sku }) => {
    if (sku.startsWith("x")) return Effect.fail(new UnknownProduct({ sku }))
    let digest = sku
    for (let i = 0; i < 200; i++) digest = createHash("sha256").update(digest).digest("hex")
    return Effect.succeed(Number.parseInt(digest.slice(0, 4), 16) / 100)
  },
  exit: () => {
    setImmediate(() => process.exit(1))
    return Effect.never
  }
})

/** A shopping basket per customer, in the caller's runtime. */
class Basket extends Worker.Service<Basket>()("Basket", {
  add: { payload: { price: Schema.Number }, success: Schema.Number }
}) {}

export const BasketLive = Basket.conc(
  Effect.sync(() => {
    let total = 0
    return {
      add: ({ price }) => {
        total += price
        return total
      }
    }
  })
)

if (import.meta.main) {
  const port = Number(process.env.PORT ?? 9400)
  const seconds = process.env.DASHBOARD_SECONDS === undefined ? undefined : Number(process.env.DASHBOARD_SECONDS)

  const App = Corps.layer([PricerLive, BasketLive], {
    name: "shop",
    module: import.meta.url,
    placement: { envs: { pricing: { kind: "thread", count: 2 } }, workers: { Pricer: { env: "pricing" } } }
  }).pipe(
    Layer.provideMerge(Dashboard.layer({ port })),
    Layer.provideMerge(Monitoring.layer()),
    Layer.provide(NodeEnv.layer)
  )

  /** One customer's visit: price a few products (one unknown now and then), add them to the basket. */
  const visit = (customer: number) =>
    Effect.gen(function* () {
      const pricer = yield* Pricer
      const basket = (yield* Basket).instance(`customer-${customer % 50}`)
      for (const sku of ["apple", "pear", customer % 7 === 0 ? "xylophone" : "fig"]) {
        const price = yield* Effect.exit(pricer.price({ sku }))
        if (price._tag === "Success") yield* basket.add({ price: price.value })
      }
    })

  const program = Effect.gen(function* () {
    const { url, port } = yield* Dashboard.Dashboard
    yield* Console.log(`dashboard: ${url}   (also: npx corps top 127.0.0.1:${port})`)
    const pricer = yield* Pricer
    // Load: 8 customers at a time, without end.
    yield* Effect.forkChild(
      Effect.forEach(
        Array.from({ length: 8 }, (_, i) => i),
        (lane) =>
          Effect.forever(Effect.andThen(visit(lane + Math.floor(Math.random() * 1000)), Effect.sleep("20 millis"))),
        { concurrency: "unbounded", discard: true }
      )
    )
    // Trouble: a thread exits every 15 s; its supervisor starts another.
    yield* Effect.forkChild(
      Effect.exit(pricer.exit()).pipe(Effect.repeat(Schedule.spaced("15 seconds")), Effect.delay("15 seconds"))
    )
    return yield* seconds === undefined ? Effect.never : Effect.sleep(`${seconds} seconds`)
  })

  // The Corps' own log lines (restarts, lost calls) are left to the dashboard's timeline.
  await Effect.runPromise(program.pipe(Effect.provide(App), Effect.provideService(References.MinimumLogLevel, "Error")))
}

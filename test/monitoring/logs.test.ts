/**
 * Log lines carry their Corps, Env, Worker and method: a handler's own lines
 * in a thread Env (written as JSON there, read from the thread's stdout),
 * in the caller's runtime with tracing on (a test Logger captures them), and
 * effect-corps' own lines about an Env.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger, References, Schedule } from "effect"
import { Corps, Monitoring } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { Calc, CalcLive, TallyLive } from "../fixtures/monitored.ts"

const fixtures = new URL("../fixtures/monitored.ts", import.meta.url).href

interface Line {
  readonly message: unknown
  readonly annotations: Readonly<Record<string, unknown>>
}

/** A Logger that keeps each line's message and annotations. */
const capturing = () => {
  const lines: Array<Line> = []
  const logger = Logger.make((options) => {
    lines.push({ message: options.message, annotations: { ...options.fiber.getRef(References.CurrentLogAnnotations) } })
  })
  return { lines, layer: Logger.layer([logger]) }
}

/** Everything written to this process' stdout while the scope is open (a thread Env's stdout ends up here). */
const stdoutCapture = Effect.acquireRelease(
  Effect.sync(() => {
    const chunks: Array<string> = []
    const write = process.stdout.write
    process.stdout.write = function (this: unknown, chunk: any, ...rest: Array<any>) {
      chunks.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"))
      return (write as any).call(this, chunk, ...rest)
    } as typeof process.stdout.write
    return { chunks, restore: () => (process.stdout.write = write) }
  }),
  (capture) => Effect.sync(capture.restore)
)

describe("Monitoring logs", () => {
  it.live("a handler's lines in a thread Env are JSON annotated with Corps, Env, Worker and method", () =>
    Effect.gen(function* () {
      const { chunks } = yield* stdoutCapture
      const text = `hello-${Math.random().toString(36).slice(2)}`
      yield* Effect.gen(function* () {
        const calc = yield* Calc
        yield* calc.say({ text })
        // The thread's stdout reaches this process asynchronously.
        yield* Effect.suspend(() => (chunks.join("").includes(text) ? Effect.void : Effect.fail("not yet"))).pipe(
          Effect.retry(Schedule.spaced("20 millis")),
          Effect.timeout("20 seconds")
        )
      }).pipe(
        Effect.provide(
          Corps.layer([CalcLive, TallyLive], {
            name: "shop",
            module: fixtures,
            placement: { envs: { pool: { kind: "thread", count: 1, spare: false } }, default: "pool" }
          }).pipe(Layer.provide(NodeEnv.layer), Layer.provide(Monitoring.layer({ metrics: false, logFormat: "json" })))
        ),
        Effect.scoped
      )
      const line = chunks
        .join("")
        .split("\n")
        .find((l) => l.includes(text))!
      const parsed = JSON.parse(line)
      assert.deepStrictEqual(parsed.message, text)
      assert.strictEqual(parsed.level, "INFO")
      assert.deepStrictEqual(parsed.annotations, { corps: "shop", env: "pool", worker: "Calc", method: "say" })
    }).pipe(Effect.scoped)
  )

  it.live("with tracing on, a handler's lines in the caller's runtime are annotated too", () => {
    const { lines, layer } = capturing()
    return Effect.gen(function* () {
      const calc = yield* Calc
      yield* calc.say({ text: "local line" }).pipe(Effect.annotateLogs({ request: "r-1" }))
      const line = lines.find((l) => Array.isArray(l.message) && l.message[0] === "local line")!
      assert.deepStrictEqual(line.annotations, {
        request: "r-1",
        corps: "shop",
        env: "local",
        worker: "Calc",
        method: "say"
      })
    }).pipe(
      Effect.provide(
        Corps.layer([CalcLive, TallyLive], { name: "shop", placement: {} }).pipe(
          Layer.provide(Monitoring.layer({ metrics: false, tracing: true }))
        )
      ),
      Effect.provide(layer),
      Effect.scoped
    )
  })

  it.live("effect-corps' own line about an Env names the Corps, the Env and the event", () => {
    const { lines, layer } = capturing()
    return Effect.gen(function* () {
      const calc = yield* Calc
      yield* calc.add({ a: 1, b: 1 })
      const started = lines.find((l) => String(l.message).includes("Env pool#0 started"))!
      assert.strictEqual(started.annotations.env, "pool")
      assert.strictEqual(started.annotations.event, "EnvStarted")
      assert.isString(started.annotations.corps)
    }).pipe(
      Effect.provide(
        Corps.layer([CalcLive, TallyLive], {
          name: "shop",
          module: fixtures,
          placement: { envs: { pool: { kind: "thread", count: 1, spare: false } }, default: "pool" }
        }).pipe(Layer.provide(NodeEnv.layer))
      ),
      Effect.provide(layer),
      Effect.provideService(References.MinimumLogLevel, "Debug"),
      Effect.scoped
    )
  })
})

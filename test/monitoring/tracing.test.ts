/**
 * Traces across Envs, checked at a real OTLP/HTTP receiver: a call from the
 * caller to a Worker in a thread, which calls a Worker in a process, makes
 * one trace whose spans link parent to child all the way (one span per call,
 * or with `clientSpans` a caller's span too); and sampling is honoured, in
 * the Envs from the frame and locally (an in-memory Tracer records what was
 * sampled).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schedule, Tracer } from "effect"
import { Corps, Monitoring } from "../../src/index.ts"
import { NodeEnv } from "../../src/node/index.ts"
import { BackLive, Calc, CalcLive, Front, FrontLive, TallyLive } from "../fixtures/monitored.ts"
import { type ReceivedSpan, receiver } from "./otlp.ts"

const fixtures = new URL("../fixtures/monitored.ts", import.meta.url).href

/** The span named `name` whose parent is `parent`, waiting for it to be exported. */
const spanUnder = (spans: ReadonlyArray<ReceivedSpan>, name: string, parent: ReceivedSpan): ReceivedSpan => {
  const found = spans.filter((s) => s.name === name && s.parentSpanId === parent.spanId)
  assert.strictEqual(found.length, 1, `one ${name} under ${parent.name}: ${JSON.stringify(spans.map((s) => s.name))}`)
  assert.strictEqual(found[0]!.traceId, parent.traceId)
  return found[0]!
}

describe("Monitoring traces", () => {
  /** The chain caller → Front (thread) → Back (process), exporting to `otlp`, with `tracing` as given. */
  const chain = (url: string, tracing: Monitoring.Options["tracing"]) =>
    Corps.layer([FrontLive, BackLive], {
      name: "chain",
      module: fixtures,
      placement: {
        envs: { front: { kind: "thread", count: 1 }, back: { kind: "process", count: 1 } },
        workers: { Front: "front", Back: "back" }
      }
    }).pipe(
      Layer.provide(NodeEnv.layer),
      Layer.provideMerge(Monitoring.layer({ tracing, otlp: { url, serviceName: "chain-test" } }))
    )

  /** Every runtime exports on its own, about once a second: waits until every span named in `names` has come. */
  const awaitSpans = (spans: ReadonlyArray<ReceivedSpan>, ...names: ReadonlyArray<string>) =>
    Effect.suspend(() =>
      names.every((name) => spans.some((s) => s.name === name)) ? Effect.void : Effect.fail("not yet")
    ).pipe(Effect.retry(Schedule.spaced("100 millis")), Effect.timeout("30 seconds"))

  /** Calls Front.relay under a span `test-root` through the chain; answers every span received and that root. */
  const relayUnderRoot = (tracing: Monitoring.Options["tracing"]) =>
    Effect.gen(function* () {
      const otlp = yield* receiver
      yield* Effect.gen(function* () {
        const front = yield* Front
        assert.strictEqual(yield* front.relay({ n: 7 }).pipe(Effect.withSpan("test-root")), 7)
        yield* awaitSpans(otlp.spans, "Back.inside", "test-root")
      }).pipe(Effect.provide(chain(otlp.url, tracing)), Effect.scoped)
      return { spans: otlp.spans, root: otlp.spans.find((s) => s.name === "test-root")! }
    })

  it.live("caller → thread → process: one trace, each call one span where it runs, under its caller's", () =>
    Effect.gen(function* () {
      const { spans, root } = yield* relayUnderRoot(true)
      const inThread = spanUnder(spans, "Front.relay", root)
      assert.strictEqual(inThread.resource["corps.env"], "front")
      assert.strictEqual(inThread.resource["service.name"], "chain-test")
      // The thread's call to the process passes through the caller, which adds no span of its own.
      const inProcess = spanUnder(spans, "Back.echo", inThread)
      assert.strictEqual(inProcess.resource["corps.env"], "back")
      const inside = spanUnder(spans, "Back.inside", inProcess)
      assert.strictEqual(inside.resource["corps.env"], "back")
      assert.strictEqual(spans.filter((s) => s.name === "Front.relay" || s.name === "Back.echo").length, 2)
    }).pipe(Effect.scoped)
  )

  it.live("clientSpans: the caller of each call to another Env has a client span around it", () =>
    Effect.gen(function* () {
      const { spans, root } = yield* relayUnderRoot({ clientSpans: true })
      const callFront = spanUnder(spans, "Front.relay", root)
      assert.strictEqual(callFront.resource["corps.env"], undefined)
      assert.strictEqual(callFront.attributes["corps.env"], "front")
      const inThread = spanUnder(spans, "Front.relay", callFront)
      assert.strictEqual(inThread.resource["corps.env"], "front")
      const callBack = spanUnder(spans, "Back.echo", inThread)
      assert.strictEqual(callBack.resource["corps.env"], "front")
      // Calls between Envs go through the caller, which forwards them in a span of its own.
      const forwarded = spanUnder(spans, "Back.echo", callBack)
      assert.strictEqual(forwarded.resource["corps.env"], undefined)
      const inProcess = spanUnder(spans, "Back.echo", forwarded)
      assert.strictEqual(inProcess.resource["corps.env"], "back")
      spanUnder(spans, "Back.inside", inProcess)
    }).pipe(Effect.scoped)
  )

  it.live("a root call to another Env: its span there starts the trace, sampled as the caller decided", () =>
    Effect.gen(function* () {
      const otlp = yield* receiver
      // Rate 0 first: nothing of these calls may be exported, from any runtime.
      yield* Effect.gen(function* () {
        const front = yield* Front
        assert.strictEqual(yield* front.relay({ n: 1 }), 1)
      }).pipe(Effect.provide(chain(otlp.url, { sampleRate: 0 })), Effect.scoped)
      yield* Effect.gen(function* () {
        const front = yield* Front
        assert.strictEqual(yield* front.relay({ n: 2 }), 2)
        yield* awaitSpans(otlp.spans, "Back.inside")
      }).pipe(Effect.provide(chain(otlp.url, { sampleRate: 1 })), Effect.scoped)

      const spans = otlp.spans
      const relays = spans.filter((s) => s.name === "Front.relay")
      assert.strictEqual(relays.length, 1, "only the sampled call's span is exported")
      const inThread = relays[0]!
      assert.strictEqual(inThread.parentSpanId, undefined)
      assert.match(inThread.traceId, /^[0-9a-f]{32}$/, "a trace of its own, begun in the thread")
      assert.strictEqual(inThread.resource["corps.env"], "front")
      spanUnder(spans, "Back.inside", spanUnder(spans, "Back.echo", inThread))
    }).pipe(Effect.scoped)
  )

  /** A Tracer that keeps every span it makes. */
  const recording = () => {
    const spans: Array<Tracer.Span> = []
    const tracer = Tracer.make({
      span: (options) => {
        const span = new Tracer.NativeSpan(options)
        spans.push(span)
        return span
      }
    })
    return { spans, layer: Layer.succeed(Tracer.Tracer, tracer) }
  }

  for (const [rate, sampled] of [
    [0, false],
    [1, true]
  ] as const) {
    it.live(`sampleRate ${rate}: a root call's span is ${sampled ? "" : "not "}sampled, its children follow`, () => {
      const { spans, layer } = recording()
      return Effect.gen(function* () {
        const calc = yield* Calc
        yield* calc.viaTally({ key: "a" })
        const viaTally = spans.find((s) => s.name === "Calc.viaTally")!
        assert.strictEqual(viaTally.sampled, sampled)
        const bump = spans.find((s) => s.name === "Tally.bump")!
        assert.strictEqual(bump.sampled, sampled)
        assert.strictEqual(bump.parent._tag === "Some" ? bump.parent.value.spanId : undefined, viaTally.spanId)
        // Under a sampled parent of the program's own, the call is sampled whatever the rate.
        yield* calc.add({ a: 1, b: 1 }).pipe(Effect.withSpan("program", { sampled: true }))
        assert.isTrue(spans.find((s) => s.name === "Calc.add")!.sampled)
      }).pipe(
        Effect.provide(
          Corps.layer([CalcLive, TallyLive], { placement: {} }).pipe(
            Layer.provideMerge(Monitoring.layer({ metrics: false, tracing: { sampleRate: rate } }))
          )
        ),
        Effect.provide(layer),
        Effect.scoped
      )
    })
  }

  it.live("without tracing a call opens no span", () => {
    const { spans, layer } = recording()
    return Effect.gen(function* () {
      const calc = yield* Calc
      yield* calc.add({ a: 1, b: 1 }).pipe(Effect.withSpan("program"))
      assert.deepStrictEqual(
        spans.map((s) => s.name),
        ["program"]
      )
    }).pipe(
      Effect.provide(
        Corps.layer([CalcLive, TallyLive], { placement: {} }).pipe(Layer.provideMerge(Monitoring.layer()))
      ),
      Effect.provide(layer),
      Effect.scoped
    )
  })
})

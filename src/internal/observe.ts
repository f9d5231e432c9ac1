/**
 * Observed Targets: what a handle calls through when monitoring is on. The
 * Corps wraps a Worker's Targets once, when it builds the Worker's entry, and
 * only when `Monitoring.layer` asked for it; without it the handles call the
 * Targets directly and nothing here runs.
 *
 * Metrics: a call bumps its method's {@link CallSeries} (made once per
 * method, so a call looks nothing up). A call whose Target answers at once
 * (a synchronous FastPath handler) is timed without any Effect frame; any
 * other adds one `onExit`.
 *
 * Traces: a call in this runtime runs in a span named `Worker.method` under
 * the caller's current span. A call to another Env is handed the caller's
 * span context instead (`callTraced` with a `Wire.FromFiber`, read when the
 * call runs), which travels in the call frame: the span is made there. With
 * `clientSpans`, such a call also gets a `client` span here, whose context is
 * the one handed on.
 */
import { Context, Effect, Stream, Tracer } from "effect"
import type { Target } from "./handle.ts"
import { callPrototype } from "./invoke.ts"
import type { Settings } from "./monitoring.ts"
import { type CallSeries, now } from "./recorder.ts"
import * as Wire from "./wire.ts"

/** What monitoring observes in one runtime. */
export interface Observe {
  /** Record metrics into these series (by method), or not at all. */
  readonly series: Readonly<Record<string, CallSeries>> | undefined
  /** Open spans, sampling root calls at this rate (0 to 1), or not at all. */
  readonly tracing: Settings["tracing"]
  /** Annotate the handlers' log lines with these (plus worker and method), or not. */
  readonly logAnnotations: Readonly<Record<string, string>> | undefined
  readonly worker: string
  /** The Env the Worker is placed in: a span attribute. */
  readonly env: string
  /** Span names, options and log annotations by method, shared by the Targets of every key. */
  readonly perMethod: Map<string, PerMethod>
}

/** Whether `u` has a step to take at once (the FastPath's call primitives, and this module's). */
const hasStep = (u: unknown): u is { step(): Effect.Effect<unknown, unknown> } =>
  typeof (u as { step?: unknown }).step === "function"

/** One metered call, as a description: each run times and counts one call. */
interface MeteredCall extends Effect.Effect<unknown, unknown> {
  readonly series: CallSeries
  readonly effect: Effect.Effect<unknown, unknown>
  step(): Effect.Effect<unknown, unknown>
}

const MeteredCallProto = callPrototype<MeteredCall>("effect-corps/MeteredCall", function () {
  const effect = this.effect
  const start = this.series.begin()
  // The FastPath's own step, taken here: a synchronous handler answers an Exit with no frame at all.
  return this.series.finish(hasStep(effect) ? effect.step() : effect, start)
})

const MeteredCall = function (this: any, series: CallSeries, effect: Effect.Effect<unknown, unknown>) {
  this.series = series
  this.effect = effect
} as unknown as new (
  series: CallSeries,
  effect: Effect.Effect<unknown, unknown>
) => MeteredCall
MeteredCall.prototype = MeteredCallProto

/** Marks observed Targets, so a forwarder can reach the Target beneath (a call is counted once). */
const Inner: unique symbol = Symbol.for("effect-corps/ObservedTarget/inner")

/** The Target an observed Target wraps, or `target` itself. */
export const unobserved = (target: Target): Target => (target as any)[Inner] ?? target

/** What a span or a log line of `worker.method` carries, made once per method (not per call). */
interface PerMethod {
  readonly name: string
  readonly internal: Tracer.SpanOptionsNoTrace
  readonly client: Tracer.SpanOptionsNoTrace
  /** The same options with a root call's sampling decision, by [kind][sampled]: no object per call. */
  readonly root: {
    readonly internal: readonly [Tracer.SpanOptionsNoTrace, Tracer.SpanOptionsNoTrace]
    readonly client: readonly [Tracer.SpanOptionsNoTrace, Tracer.SpanOptionsNoTrace]
  }
  readonly annotations: Readonly<Record<string, string>> | undefined
}

/** Wraps `target` so its calls are observed as `observe` says. */
export const observeTarget = (target: Target, observe: Observe): Target => {
  const { series, tracing, logAnnotations, worker, env } = observe
  const meter = (method: string, effect: Effect.Effect<unknown, unknown>): Effect.Effect<unknown, unknown> => {
    const s = series?.[method]
    return s === undefined ? effect : new MeteredCall(s, effect)
  }
  const perMethod = observe.perMethod
  const of = (method: string): PerMethod => {
    let found = perMethod.get(method)
    if (found === undefined) {
      const attributes = { "corps.worker": worker, "corps.method": method, "corps.env": env }
      const internal: Tracer.SpanOptionsNoTrace = { kind: "internal", attributes }
      const client: Tracer.SpanOptionsNoTrace = { kind: "client", attributes }
      found = {
        name: `${worker}.${method}`,
        internal,
        client,
        root: {
          internal: [
            { ...internal, sampled: false },
            { ...internal, sampled: true }
          ],
          client: [
            { ...client, sampled: false },
            { ...client, sampled: true }
          ]
        },
        annotations: logAnnotations === undefined ? undefined : { ...logAnnotations, worker, method }
      }
      perMethod.set(method, found)
    }
    return found
  }
  // Only a handler running in this runtime logs here: a call to another Env is annotated there.
  const annotate = (method: string, effect: Effect.Effect<unknown, unknown>): Effect.Effect<unknown, unknown> => {
    const annotations = of(method).annotations
    return annotations === undefined ? effect : Effect.annotateLogs(effect, annotations)
  }
  let call: Target["call"]
  if (tracing === undefined) {
    if (logAnnotations === undefined || target.callTraced !== undefined) {
      const metered = target.callMetered
      call =
        metered === undefined || series === undefined
          ? (method, payload) => meter(method, target.call(method, payload))
          : (method, payload) => {
              // The Target counts the call itself when it can (one object per call, as unmetered).
              const s = series[method]
              if (s === undefined) return target.call(method, payload)
              return (
                metered.call(target, method, payload, s, undefined) ?? new MeteredCall(s, target.call(method, payload))
              )
            }
    } else call = (method, payload) => meter(method, annotate(method, target.call(method, payload)))
  } else if (!tracing.clientSpans && target.callTraced !== undefined) {
    // One span per call, made where the handler runs: the caller passes its own span on (read when the call runs).
    const source = new Wire.FromFiber(tracing.sampleRate)
    const crossing = target.callTraced
    const metered = target.callMetered
    call = (method, payload) => {
      const s = series?.[method]
      if (s === undefined) return crossing.call(target, method, payload, source)
      return (
        metered?.call(target, method, payload, s, source) ??
        new MeteredCall(s, crossing.call(target, method, payload, source))
      )
    }
  } else {
    const rate = tracing.sampleRate
    const crossing = target.callTraced
    const metered = target.callMetered
    const traced = (method: string, payload: unknown, s: CallSeries | undefined) =>
      Effect.withFiber((fiber) => {
        const m = of(method)
        // A root call is sampled at the rate; a call under a span follows its parent's decision.
        const options =
          Context.getOrUndefined(fiber.context, Tracer.ParentSpan) === undefined
            ? (crossing === undefined ? m.root.internal : m.root.client)[Math.random() < rate ? 1 : 0]
            : crossing === undefined
              ? m.internal
              : m.client
        return Effect.useSpan(m.name, options, (span) => {
          if (crossing === undefined)
            return Effect.withParentSpan(annotate(method, target.call(method, payload)), span, noStack)
          const trace = { traceId: span.traceId, spanId: span.spanId, sampled: span.sampled }
          if (s === undefined) return crossing.call(target, method, payload, trace)
          // Metrics too: the Target to another Env counts the call where it can, inside the span.
          return (
            metered?.call(target, method, payload, s, trace) ??
            new MeteredCall(s, crossing.call(target, method, payload, trace))
          )
        })
      })
    call =
      crossing === undefined || series === undefined
        ? (method, payload) => meter(method, traced(method, payload, undefined))
        : (method, payload) => traced(method, payload, series[method])
  }
  return {
    [Inner]: target,
    call,
    stream: (method, payload) =>
      observeStream(target.stream(method, payload), series?.[method], tracing, worker, method)
  } as Target
}

const noStack = { captureStackTrace: false } as const

/** A stream call is one call: in flight while it runs, timed and counted when it ends. */
const observeStream = (
  stream: Stream.Stream<unknown, unknown>,
  series: CallSeries | undefined,
  tracing: Observe["tracing"],
  worker: string,
  method: string
): Stream.Stream<unknown, unknown> => {
  const traced = tracing === undefined ? stream : Stream.withSpan(stream, `${worker}.${method}`, noStack)
  if (series === undefined) return traced
  return Stream.unwrap(
    Effect.sync(() => {
      series.inFlight++
      const start = now()
      return Stream.onExit(traced, (exit) => Effect.sync(() => series.end(exit, now() - start)))
    })
  )
}

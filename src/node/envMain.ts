/**
 * The entry point of a thread or process Env. Users never write one: the
 * caller starts this file, which imports the module that defines the Corps,
 * builds the Workers placed here, serves calls to them, and reaches every
 * other Worker of the Corps back through the caller.
 */
import { isMainThread, workerData } from "node:worker_threads"
import { Cause, Clock, Context, Deferred, Effect, Exit, Layer, Scope, Stream, Tracer } from "effect"
import { CHILD_VARIABLE } from "../host/protocol.ts"
import { remoteTarget, STREAM } from "../internal/dispatch.ts"
import { markServing } from "../internal/envProvider.ts"
import type { Target } from "../internal/handle.ts"
import { loggerLayer, RuntimeMonitor } from "../internal/monitoring.ts"
import { CorpsRuntime } from "../internal/runtime.ts"
import * as Wire from "../internal/wire.ts"
import type * as Placement from "../Placement.ts"
import { implementationsIn } from "../Worker.ts"
import { split } from "./duplex.ts"
import { CONTROL, type EnvInit, INIT_VARIABLE } from "./envInit.ts"
import { fromDaemon } from "./fromDaemon.ts"
import { sampler } from "./load.ts"
import { hostFor } from "./routing.ts"
import { makeClient } from "./transport/Client.ts"
import { fromParent } from "./transport/Link.ts"
import { serve } from "./transport/Server.ts"

const init: EnvInit = isMainThread ? JSON.parse(process.env[INIT_VARIABLE] ?? "null") : workerData
/** This Env's slot; a warm spare (index -1) learns it when it takes over a crashed Env (`adopt`). */
let index = init.index

const local: Placement.Resolved = { envName: "local", env: { kind: "local" }, strategy: "auto", replicas: undefined }

/**
 * In a scaling Env, for each Conc placed by the caller's directory, the keys
 * the caller has sent here: only these are served here. Any other key goes
 * through the caller, whose directory places it, so two creators of a new
 * key (here and elsewhere) always meet one instance.
 */
const assigned = new Map<string, Set<string>>()
const placedByDirectory = Object.values(init.hosts).includes("directory")

/** Records that the caller routed `call` here (a stream's `open` names its Worker and key in its payload). */
const markAssigned = (call: Wire.Call): void => {
  if (call.worker === STREAM) {
    if (call.method === "open") {
      const open = call.payload as Wire.Call
      assigned.get(open.worker)?.add(open.key)
    }
  } else {
    assigned.get(call.worker)?.add(call.key)
  }
}

/**
 * A Target that decides per call (not once per handle) whether the key is
 * served here: a key may be assigned here after a handle to it was made, or
 * leave when this Env is drained.
 */
const perCall = (key: string, mine: ReadonlySet<string>, here: () => Target, there: () => Target): Target => {
  let remote: Target | undefined
  const route = () => (mine.has(key) ? here() : (remote ??= there()))
  return {
    call: (method, payload) => Effect.suspend(() => route().call(method, payload)),
    stream: (method, payload) => Stream.suspend(() => route().stream(method, payload))
  }
}

/**
 * Drains this Env for scaling down (the `release` control call): passivates
 * the idle instances of the `passivate` Workers (their state is persisted:
 * they resume elsewhere), then answers, for each of `workers`, the keys
 * whose instances are still live here. Keys no longer live are no longer
 * served here.
 */
const release = (
  runtime: CorpsRuntime | undefined,
  request: { readonly workers: ReadonlyArray<string>; readonly passivate: ReadonlyArray<string> }
): Effect.Effect<Record<string, ReadonlyArray<string>>> =>
  Effect.gen(function* () {
    const answer: Record<string, ReadonlyArray<string>> = {}
    for (const name of request.workers) {
      const mine = assigned.get(name)
      const conc = runtime?.concs.get(name)
      if (mine === undefined || conc === undefined) continue
      if (request.passivate.includes(name)) {
        yield* Effect.forEach([...mine], (key) => conc.passivate(key), { concurrency: "unbounded", discard: true })
      }
      const live = new Set(conc.liveKeys())
      for (const key of mine) if (!live.has(key)) mine.delete(key)
      answer[name] = [...mine]
    }
    return answer
  })
const monitoring = init.monitoring
/**
 * Monitoring in this Env: the calls its own Workers make are counted here
 * (the caller counts those it makes) and collected by the caller with the
 * `metrics` control call.
 */
const monitor =
  monitoring === undefined
    ? undefined
    : new RuntimeMonitor({
        settings: monitoring.settings,
        corpsName: monitoring.corpsName,
        here: init.envName,
        envOf: (worker) => monitoring.envOf[worker] ?? init.envName,
        registry: undefined,
        annotateLogs: true
      })

const main = Effect.gen(function* () {
  // Started by a `corps host` daemon: the link is the caller's socket, handed over by the daemon.
  const parent = process.env[CHILD_VARIABLE] === "1" ? yield* Effect.promise(fromDaemon) : fromParent()
  const { calling, serving } = split(parent)
  const caller = yield* makeClient(calling, { envName: "caller" })
  const toCaller = caller.call
  const ready = yield* Deferred.make<string | undefined>()
  const scope = yield* Scope.make()
  let runtime: CorpsRuntime | undefined
  // A module without an `import.meta.main` guard builds its Corps again while this Env imports it; that
  // Corps refuses to start more Envs (Corps.ts) and reports here, so that this Env's start fails with why.
  let reported: string | undefined
  markServing({
    module: init.module,
    env: `${init.envName}#${init.index}`,
    report: (problem) => {
      reported ??= problem
    }
  })

  const build = Effect.gen(function* () {
    const exports = yield* Effect.tryPromise({
      try: () => import(init.module) as Promise<Record<string, unknown>>,
      catch: (cause) => `cannot import: ${cause instanceof Error ? cause.message : String(cause)}`
    })
    if (reported !== undefined) return yield* Effect.fail(reported)
    const implementations = implementationsIn(exports)
    if (typeof implementations === "string") return yield* Effect.fail(implementations)
    const missing = init.workers.filter((name) => !implementations.has(name))
    if (missing.length > 0)
      return yield* Effect.fail(`the module does not export an implementation of ${missing.join(", ")}`)
    const placedHere = new Set(init.workers)
    const remote = new Map<string, (key: string) => Target>()
    const partition = new Map<string, (key: string, here: () => Target) => Target | undefined>()
    const resolved = new Map<string, Placement.Resolved>()
    for (const [name, impl] of implementations) {
      const viaCaller = (key: string) => remoteTarget(impl.worker, key, (call: Wire.Call) => toCaller(call))
      if (!placedHere.has(name)) {
        remote.set(name, viaCaller)
        continue
      }
      resolved.set(name, local)
      const hosts = init.hosts[name]
      if (hosts === "directory") {
        const mine = new Set<string>()
        assigned.set(name, mine)
        partition.set(name, (key, here) => perCall(key, mine, here, () => viaCaller(key)))
      } else if (hosts !== undefined) {
        // An instance whose key belongs to another Env of this name is reached there, through the caller.
        partition.set(name, (key) => (hostFor(key, hosts) === index ? undefined : viaCaller(key)))
      }
    }
    const handleCorps = new Map(Object.entries(init.handleCorps))
    const locations = new Map(Object.entries(init.locations ?? {}))
    runtime = new CorpsRuntime({
      name: init.envName,
      id: init.corps,
      resolved,
      scope,
      remote,
      partition,
      handleCorps,
      // This Env's pool may drain it (passivate), and its events go to the caller's hub.
      drainable: true,
      forward: {
        env: () => `${init.envName}#${index}`,
        // Fire and forget: the caller logs and publishes it; nothing here waits for that.
        send: (event) => {
          caller.register({ worker: CONTROL, key: "", method: "event", payload: event }, ignoreReply)
        }
      },
      monitor,
      locations
    })
    // Handlers' log lines carry their Corps, Env, Worker and method.
    if (monitoring !== undefined) runtime.dispatcher.logAnnotations = { corps: monitoring.corpsName, env: init.envName }
    // Traced calls: their server spans are made from this runtime's Tracer and Clock, read once here.
    if (monitoring?.settings.tracing !== undefined)
      runtime.dispatcher.spans = { tracer: yield* Tracer.Tracer, clock: yield* Clock.Clock }
    yield* runtime.build([...implementations.values()], Context.empty())
    runtime.publish()
  })

  yield* Effect.forkDetach(
    build.pipe(
      Effect.matchCause({
        onSuccess: () => undefined,
        onFailure: (cause) => {
          const failure = Cause.findErrorOption(cause)
          return failure._tag === "Some" ? String(failure.value) : Cause.pretty(cause)
        }
      }),
      Effect.flatMap((problem) => Deferred.succeed(ready, problem))
    )
  )

  const answer = Wire.success
  const load = sampler()
  // Its own window: the pool's `load` readers (autoscaling) keep theirs.
  const monitorLoad = sampler()
  const control = (call: Wire.Call): Effect.Effect<Wire.Exit> => {
    switch (call.method) {
      case "ready":
        return Effect.map(Deferred.await(ready), (problem) => answer(problem ?? null))
      // Heartbeat: answered only when the event loop is free, which is the point.
      case "ping":
        return Effect.succeed(answer(null))
      // The Env's load since the previous sample (src/node/load.ts): read by the caller's pool.
      case "load":
        return Effect.sync(() => answer(load()))
      case "release":
        return Effect.map(
          release(runtime, call.payload as { workers: ReadonlyArray<string>; passivate: ReadonlyArray<string> }),
          answer
        )
      // Draining: passivates every idle instance of the Concs named (all when null); answers the keys still live.
      case "passivate":
        return runtime === undefined
          ? Effect.succeed(answer({}))
          : Effect.map(passivateIdle(runtime, call.payload as ReadonlyArray<string> | null), answer)
      // Monitoring figures since the previous collection (src/node/monitor.ts).
      case "metrics":
        return Effect.sync(() => answer({ load: monitorLoad(), figures: monitor?.recorder?.drain() ?? null }))
      case "adopt":
        index = call.payload as number
        return Effect.succeed(answer(null))
      case "shutdown":
        return Effect.as(Scope.close(scope, Exit.void), answer(null))
      default:
        return Effect.succeed(answer(`unknown control call ${call.method}`))
    }
  }

  // Callers wait for `ready` before their first call, so a call finds the runtime built.
  yield* serve(serving, (call) => {
    if (call.worker === CONTROL || runtime === undefined) return control(call)
    if (placedByDirectory) markAssigned(call)
    return runtime.dispatcher.dispatch(call)
  })
})

const ignoreReply = () => {}

/**
 * The answer of the `passivate` control call: for each Conc Worker built
 * here and named in `workers` (every one when null), the keys still live
 * after its idle instances were passivated.
 */
const passivateIdle = (
  runtime: CorpsRuntime,
  workers: ReadonlyArray<string> | null
): Effect.Effect<Record<string, ReadonlyArray<string>>> =>
  Effect.map(
    Effect.forEach(
      [...runtime.concs].filter(([name]) => workers === null || workers.includes(name)),
      ([name, conc]) => Effect.map(conc.passivateIdle(), (live) => [name, live] as const),
      { concurrency: "unbounded" }
    ),
    (entries) => Object.fromEntries(entries)
  )
/**
 * Monitoring's Logger and Tracer for everything this Env runs: log lines in
 * the format asked for, spans exported from here, named after this Env and
 * slot.
 */
const traced = (main: Effect.Effect<void>): Effect.Effect<void> => {
  const format = monitoring?.settings.logFormat
  const effect = format === undefined ? main : Effect.provide(main, loggerLayer(format))
  const otlp = monitoring?.settings.otlp
  if (otlp === undefined || monitoring?.settings.tracing === undefined) return effect
  // Loaded only here: an Env without an OTLP endpoint never imports the exporter.
  const tracer = Layer.unwrap(
    Effect.map(
      Effect.promise(() => import("../monitoring/otlp.ts")),
      (module) =>
        // A warm spare (index -1) learns its slot only when it takes over: its resource names none.
        module.tracerLayer(otlp, {
          "corps.name": monitoring.corpsName,
          "corps.env": init.envName,
          ...(init.index >= 0 ? { "corps.slot": init.index } : {})
        })
    )
  )
  return Effect.provide(effect, tracer)
}

Effect.runFork(
  traced(main).pipe(
    Effect.catchCause((cause) => Effect.logError("effect-corps Env stopped", cause)),
    // The caller has gone (the channel closed): nothing is left to serve.
    Effect.ensuring(Effect.sync(() => (isMainThread ? process.exit(0) : undefined)))
  )
)

/**
 * The entry point of a thread or process Env. Users never write one: the
 * caller starts this file, which imports the module that defines the Corps,
 * builds the Workers placed here, serves calls to them, and reaches every
 * other Worker of the Corps back through the caller.
 */
import { isMainThread, workerData } from "node:worker_threads"
import { Cause, Context, Deferred, Effect, Exit, Scope } from "effect"
import { remoteTarget } from "../internal/dispatch.ts"
import { markServing } from "../internal/envProvider.ts"
import type { Target } from "../internal/handle.ts"
import { CorpsRuntime } from "../internal/runtime.ts"
import * as Wire from "../internal/wire.ts"
import type * as Placement from "../Placement.ts"
import { implementationsIn } from "../Worker.ts"
import { split } from "./duplex.ts"
import { CONTROL, type EnvInit, INIT_VARIABLE } from "./envInit.ts"
import { sampler } from "./load.ts"
import { hostFor } from "./routing.ts"
import { makeClient } from "./transport/Client.ts"
import { fromParent } from "./transport/Link.ts"
import { serve } from "./transport/Server.ts"

const init: EnvInit = isMainThread ? JSON.parse(process.env[INIT_VARIABLE] ?? "null") : workerData
/** This Env's slot; a warm spare (index -1) learns it when it takes over a crashed Env (`adopt`). */
let index = init.index

const local: Placement.Resolved = { envName: "local", env: { kind: "local" }, strategy: "auto", replicas: undefined }

const main = Effect.gen(function* () {
  const { calling, serving } = split(fromParent())
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
    const partition = new Map<string, (key: string) => Target | undefined>()
    const resolved = new Map<string, Placement.Resolved>()
    for (const [name, impl] of implementations) {
      const viaCaller = (key: string) => remoteTarget(impl.worker, key, (call: Wire.Call) => toCaller(call))
      if (!placedHere.has(name)) {
        remote.set(name, viaCaller)
        continue
      }
      resolved.set(name, local)
      const hosts = init.hosts[name]
      // An instance whose key belongs to another Env of this name is reached there, through the caller.
      if (hosts !== undefined)
        partition.set(name, (key) => (hostFor(key, hosts) === index ? undefined : viaCaller(key)))
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
      locations
    })
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
  yield* serve(serving, (call) =>
    call.worker === CONTROL || runtime === undefined ? control(call) : runtime.dispatcher.dispatch(call)
  )
})

Effect.runFork(
  main.pipe(
    Effect.catchCause((cause) => Effect.logError("effect-corps Env stopped", cause)),
    // The caller has gone (the channel closed): nothing is left to serve.
    Effect.ensuring(Effect.sync(() => (isMainThread ? process.exit(0) : undefined)))
  )
)

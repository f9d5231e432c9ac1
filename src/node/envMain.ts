/**
 * The entry point of a thread or process Env. Users never write one: the
 * caller starts this file, which imports the module that defines the Corps,
 * builds the Workers placed here, serves calls to them, and reaches every
 * other Worker of the Corps back through the caller.
 */
import { isMainThread, workerData } from "node:worker_threads"
import { Cause, Context, Deferred, Effect, Exit, Scope } from "effect"
import type { EncodedExit } from "../internal/codec.ts"
import { type Request, remoteTarget } from "../internal/dispatch.ts"
import type { Target } from "../internal/handle.ts"
import { CorpsRuntime } from "../internal/runtime.ts"
import type * as Placement from "../Placement.ts"
import { implementationsIn } from "../Worker.ts"
import { split } from "./duplex.ts"
import { hostFor } from "./routing.ts"
import { makeClient } from "./transport/Client.ts"
import { fromParent } from "./transport/Link.ts"
import { serve } from "./transport/Server.ts"
import { CONTROL, type EnvInit, INIT_VARIABLE } from "./wire.ts"

const init: EnvInit = isMainThread ? JSON.parse(process.env[INIT_VARIABLE] ?? "null") : workerData

const local: Placement.Resolved = { envName: "local", env: { kind: "local" }, strategy: "auto", replicas: undefined }

const main = Effect.gen(function* () {
  const { calling, serving } = split(fromParent())
  const caller = yield* makeClient(calling, { envName: "caller" })
  const toCaller = caller.call
  const ready = yield* Deferred.make<string | undefined>()
  const scope = yield* Scope.make()
  let runtime: CorpsRuntime | undefined

  const build = Effect.gen(function* () {
    const exports = yield* Effect.tryPromise({
      try: () => import(init.module) as Promise<Record<string, unknown>>,
      catch: (cause) => `cannot import: ${cause instanceof Error ? cause.message : String(cause)}`
    })
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
      const viaCaller = (key: string) => remoteTarget(impl.worker, key, (request: Request) => toCaller(request))
      if (!placedHere.has(name)) {
        remote.set(name, viaCaller)
        continue
      }
      resolved.set(name, local)
      const hosts = init.hosts[name]
      // An instance whose key belongs to another Env of this name is reached there, through the caller.
      if (hosts !== undefined)
        partition.set(name, (key) => (hostFor(key, hosts) === init.index ? undefined : viaCaller(key)))
    }
    runtime = new CorpsRuntime({ name: init.envName, id: init.corps, resolved, scope, remote, partition })
    for (const [worker, corps] of Object.entries(init.handleCorps)) runtime.handleCorps.set(worker, corps)
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

  const answer = (value: unknown): EncodedExit => ({ _tag: "Success", value })
  const control = (method: string): Effect.Effect<EncodedExit> => {
    switch (method) {
      case "ready":
        return Effect.map(Deferred.await(ready), (problem) => answer(problem ?? null))
      case "shutdown":
        return Effect.as(Scope.close(scope, Exit.void), answer(null))
      default:
        return Effect.succeed(answer(`unknown control call ${method}`))
    }
  }

  // Callers wait for `ready` before their first call, so a call finds the runtime built.
  yield* serve(serving, (call) =>
    call.worker === CONTROL || runtime === undefined ? control(call.method) : runtime.dispatcher.dispatch(call)
  )
})

Effect.runFork(
  main.pipe(
    Effect.catchCause((cause) => Effect.logError("effect-corps Env stopped", cause)),
    // The caller has gone (the channel closed): nothing is left to serve.
    Effect.ensuring(Effect.sync(() => (isMainThread ? process.exit(0) : undefined)))
  )
)

/**
 * The builder side of created instances (`Worker.create`, see create.ts):
 * wraps a contract's builder so that it reads the instance's init from its
 * key, serves the hidden `$start` and `$close` methods, and refuses calls
 * once the instance is closed.
 */
import { Effect, Exit, Schema, Scope } from "effect"
import { InstanceClosed } from "../CorpsError.ts"
import { CLOSE, encodedInitOf, START } from "./create.ts"
import { type AnyHandler, markOwn } from "./invoke.ts"

/**
 * Keys of created instances closed in this runtime (thread, process or
 * runner). A closed instance must not come back: `onDefect: "restart"` or a
 * cluster's passivation would otherwise build it again from the init its key
 * carries. One short string per closed instance, kept for the runtime's life.
 */
const closedKeys = new Set<string>()

/** What a closed instance answers: the instance's own error, which its caller receives as it is. */
const refusal = (worker: string, key: string): InstanceClosed => markOwn(new InstanceClosed({ worker, key }))

/**
 * `build` of a contract with an init, as a keyed builder: decodes the init
 * the key carries, runs the user's builder with it, and adds the lifetime
 * methods. A key that was not made by `create` cannot be built (there is no
 * init to give).
 */
export const createdBuild =
  (
    worker: string,
    codec: Schema.Codec<unknown, string>,
    build: (key: string, init: unknown) => Effect.Effect<Record<string, AnyHandler>, unknown, any>
  ) =>
  (key: string): Effect.Effect<Record<string, AnyHandler>, unknown, any> =>
    Effect.gen(function* () {
      // Rebuilt after a passivation or a restart: the caller sees that it is closed, not a start failure.
      if (closedKeys.has(key)) return yield* refusal(worker, key)
      const encoded = encodedInitOf(key)
      if (encoded === undefined) {
        return yield* Effect.die(
          new Error(`${worker} declares an init: make its instances with ${worker}.create, not by key ("${key}")`)
        )
      }
      const init = yield* Effect.orDie(Schema.decodeUnknownEffect(codec)(encoded))
      // The instance's own finalizers go to a child of the Scope it is built in: `$close` closes only
      // them, from inside a handler (closing a cluster entity's own Scope there would wait for that very handler).
      const scope = Scope.forkUnsafe(yield* Effect.scope)
      const handlers = yield* Scope.provide(build(key, init), scope)
      let closed = false
      const refused = () => Exit.fail(refusal(worker, key))
      const served: Record<string, AnyHandler> = {}
      for (const [method, handler] of Object.entries(handlers)) {
        // Still a plain function call: a synchronous handler keeps its no-Effect path.
        served[method] = (payload) => (closed ? refused() : handler(payload))
      }
      served[START] = () => (closed ? refused() : undefined)
      served[CLOSE] = () => {
        if (closed) return undefined
        closed = true
        closedKeys.add(key)
        return Scope.close(scope, Exit.void)
      }
      return served
    })

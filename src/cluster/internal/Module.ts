/**
 * What a runner serves: the implementations a user's module exports.
 *
 * A runner cannot receive closures, so it imports the module that defines the
 * implementations (by URL, as every other Env does) and serves each exported
 * implementation under its Worker's name. Delivery options travel on the
 * implementations (`{ cluster: … }`): runners and callers import the same
 * module, so they agree on them.
 */
import { Effect, Schema } from "effect"
import { type AnyImplementation, implementationsIn } from "../../Worker.ts"
import { clusterOptionsOf } from "./Entities.ts"

/**
 * The module could not be imported, or it exports two implementations of the
 * same Worker, or none at all.
 *
 * @since 0.1.0
 * @category errors
 */
export class ModuleError extends Schema.TaggedError<ModuleError>()("ClusterModuleError", {
  module: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot serve ${this.module}: ${this.reason}`
  }
}

/**
 * The implementations of one module.
 *
 * @since 0.1.0
 * @category models
 */
export interface Served {
  readonly module: string
  /** By Worker name; Corps members (`Corps.make`) are served as their own Workers too. */
  readonly implementations: ReadonlyMap<string, AnyImplementation>
}

/**
 * Collects the implementations exported by `exports`, by Worker name.
 *
 * @since 0.1.0
 * @category constructors
 */
export const collect = (
  module: string,
  exports: Readonly<Record<string, unknown>>
): Effect.Effect<Served, ModuleError> =>
  Effect.suspend(() => {
    // Corps members (`Corps.make`) are served as Workers of their own too.
    const implementations = implementationsIn(exports, { deep: true })
    if (typeof implementations === "string") return Effect.fail(new ModuleError({ module, reason: implementations }))
    if (implementations.size === 0) {
      return Effect.fail(new ModuleError({ module, reason: "it exports no Worker implementation" }))
    }
    if (exports.clusterOptions !== undefined) {
      // Read until 0.1; silently ignoring it now would change delivery without a word.
      return Effect.fail(
        new ModuleError({
          module,
          reason:
            'the clusterOptions export is no longer read: give each Worker\'s options on its implementation, e.g. Account.conc(build, { cluster: { persisted: ["deposit"] } })'
        })
      )
    }
    for (const impl of implementations.values()) {
      const problem = checkOptions(impl)
      if (problem !== undefined) return Effect.fail(new ModuleError({ module, reason: `cluster options: ${problem}` }))
    }
    return Effect.succeed({ module, implementations })
  })

/**
 * Imports the module at `url` and collects what it serves.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (url: string): Effect.Effect<Served, ModuleError> =>
  Effect.tryPromise({
    try: () => import(url) as Promise<Record<string, unknown>>,
    catch: (cause) => new ModuleError({ module: url, reason: cause instanceof Error ? cause.message : String(cause) })
  }).pipe(Effect.flatMap((exports) => collect(url, exports)))

/**
 * A misspelled method (untyped callers), a method both persisted and
 * volatile, or a persisted stream, in an implementation's cluster options:
 * never silently ignored.
 */
export const checkOptions = (impl: AnyImplementation): string | undefined => {
  const option = clusterOptionsOf(impl)
  if (option === undefined) return undefined
  const worker = impl.worker.key
  const methods = impl.worker.methods
  for (const list of ["persisted", "volatile"] as const) {
    for (const method of option[list] ?? []) {
      if (!(method in methods)) return `${worker}.${list} names ${method}, which ${worker} does not declare`
    }
  }
  for (const method of option.persisted ?? []) {
    if (option.volatile?.includes(method)) return `${worker}.${method} is listed both as persisted and as volatile`
    if (methods[method]?.stream === true) return `${worker}.${method} is a stream: streams cannot be persisted`
  }
  return undefined
}

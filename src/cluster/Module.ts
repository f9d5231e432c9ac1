/**
 * What a runner serves: the implementations a user's module exports.
 *
 * A runner cannot receive closures, so it imports the module that defines the
 * implementations (by URL, as every other Env does) and serves each exported
 * implementation under its Worker's name. A module may also export
 * `clusterOptions` (per-Worker {@link WorkerOptions}); runners and callers
 * import the same module, so they agree on them.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { type AnyImplementation, implementationsIn } from "../Worker.ts"
import type { WorkerOptions } from "./Entities.ts"

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
 * The implementations and options of one module.
 *
 * @since 0.1.0
 * @category models
 */
export interface Served {
  readonly module: string
  /** By Worker name; Corps members (`Corps.make`) are served as their own Workers too. */
  readonly implementations: ReadonlyMap<string, AnyImplementation>
  readonly options: Readonly<Record<string, WorkerOptions>>
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
    const options = (exports.clusterOptions ?? {}) as Record<string, WorkerOptions>
    const problem = checkOptions(implementations, options)
    if (problem !== undefined) return Effect.fail(new ModuleError({ module, reason: `clusterOptions: ${problem}` }))
    return Effect.succeed({ module, implementations, options })
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

/** A misspelled Worker or method, or a method both persisted and volatile, in `clusterOptions`: never silently ignored. */
const checkOptions = (
  implementations: ReadonlyMap<string, AnyImplementation>,
  options: Readonly<Record<string, WorkerOptions>>
): string | undefined => {
  for (const [worker, option] of Object.entries(options)) {
    const impl = implementations.get(worker)
    if (impl === undefined) return `no Worker named ${worker} is exported`
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
  }
  return undefined
}

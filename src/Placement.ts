/**
 * Placements: configuration — never code — saying in which Env each Worker
 * lives. A placement is validated by a Schema; any bad entry is a
 * `PlacementError` naming its key.
 *
 * ```json
 * {
 *   "default": "local",
 *   "envs": { "cpu": { "kind": "thread", "count": 2 } },
 *   "workers": {
 *     "Counter": "local",
 *     "Hasher": { "env": "cpu", "replicas": 4 }
 *   }
 * }
 * ```
 *
 * An Env reference is the name of an entry of `envs`, or the name of a kind
 * (`"local"`, `"thread"`, `"process"`) meaning that kind with its defaults.
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Exit, FileSystem, Layer, Option, Schema, SchemaIssue } from "effect"
import { PlacementError } from "./CorpsError.ts"
import * as Env from "./Env.ts"
import { didYouMean } from "./internal/suggest.ts"
import * as Scaling from "./Scaling.ts"
import * as Supervision from "./Supervision.ts"

/**
 * How a Worker is spread over the Envs of its Env reference: `auto` spreads
 * replicas over them, `per-env` puts one replica in each, `pinned` keeps a
 * single replica in the first.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Strategy = Schema.Literals(["auto", "per-env", "pinned"])

/**
 * Where one Worker lives.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WorkerPlacement = Schema.Union([
  Schema.String,
  Schema.Struct({
    env: Schema.String,
    strategy: Schema.optional(Strategy),
    replicas: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
    /** The Worker's own supervision policy: its intensity limit and outcome when its Env keeps failing (since 0.2.0). */
    supervision: Schema.optional(Supervision.Policy)
  })
])

const workerPlacementKeys = Object.keys(WorkerPlacement.members[1].fields)

/**
 * A placement, as written in a file or an environment variable.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Placement = Schema.Struct({
  default: Schema.optional(Schema.String),
  envs: Schema.optional(Schema.Record(Schema.String, Env.Env)),
  workers: Schema.optional(Schema.Record(Schema.String, WorkerPlacement))
})

/**
 * A placement.
 *
 * @since 0.1.0
 * @category models
 */
export type Placement = typeof Placement.Type

/**
 * Where one Worker ended up, after defaults and references are resolved.
 *
 * @since 0.1.0
 * @category models
 */
export interface Resolved {
  readonly envName: string
  readonly env: Env.Env
  readonly strategy: typeof Strategy.Type
  readonly replicas: number | undefined
  /** The Worker's own supervision policy, if the placement gives one (since 0.2.0). */
  readonly supervision?: Supervision.Policy | undefined
}

/**
 * Every Worker in the caller's runtime.
 *
 * @since 0.1.0
 * @category constructors
 */
export const local: Placement = {}

/**
 * Builds a placement from a value, checked by the type system. A Corps
 * checks it again when it is built, like one read from a file (unknown keys
 * included), so a value that got past the types is refused there.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (placement: Placement): Placement => placement

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()
const decodePlacement = Schema.decodeUnknownExit(Placement)

/**
 * Validates an unknown value (parsed JSON, say) as a placement. The error
 * names the first bad key, as a dotted path. Keys the schema does not know
 * are refused (a misspelt `"replica"` would otherwise be silently ignored),
 * with the intended key when the typo is close.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (input: unknown): Effect.Effect<Placement, PlacementError> => {
  const badKind = findUnknownKind(input)
  if (badKind !== undefined) return Effect.fail(badKind)
  const exit = decodePlacement(input, { errors: "all", onExcessProperty: "error" })
  if (Exit.isSuccess(exit)) return Effect.succeed(exit.value)
  const error = Exit.findErrorOption(exit)
  if (error._tag === "None") return Effect.fail(new PlacementError({ key: "(root)", reason: "invalid placement" }))
  const unexpected = findUnexpectedKey(error.value.issue, [])
  if (unexpected !== undefined) {
    const name = unexpected[unexpected.length - 1]!
    const known = knownKeys(input, unexpected.slice(0, -1))
    return Effect.fail(
      new PlacementError({
        key: unexpected.join("."),
        reason: `unknown key "${name}"${didYouMean(name, known)}; known keys here: ${known.join(", ")}`
      })
    )
  }
  const issues = formatter(error.value.issue).issues
  const path = issues[0]?.path ?? []
  const key = path.length === 0 ? "(root)" : path.map((p) => String(typeof p === "object" ? p.key : p)).join(".")
  return Effect.fail(new PlacementError({ key, reason: issues.map((i) => i.message).join("; ") }))
}

/**
 * The path of the first unknown key, reported before any other issue: a
 * misspelt key often causes a second one (`"evn"` also leaves `env`
 * missing), and the typo is what the user must fix.
 */
const findUnexpectedKey = (issue: SchemaIssue.Issue, path: ReadonlyArray<string>): Array<string> | undefined => {
  switch (issue._tag) {
    case "UnexpectedKey":
      return [...path]
    case "Pointer":
      return findUnexpectedKey(issue.issue, [...path, ...issue.path.map(String)])
    case "Composite":
    case "AnyOf":
      for (const inner of issue.issues) {
        const found = findUnexpectedKey(inner, path)
        if (found !== undefined) return found
      }
      return undefined
    default:
      return undefined
  }
}

/** The keys the object at `path` may have: the root, an Env (by its kind) or a Worker's entry. */
const knownKeys = (input: unknown, path: ReadonlyArray<string>): ReadonlyArray<string> => {
  if (path.length === 0) return Object.keys(Placement.fields)
  if (path.length === 2 && path[0] === "workers") return workerPlacementKeys
  const last = path[path.length - 1]
  if (path.length === 3 && last === "supervision") return Object.keys(Supervision.Policy.fields)
  if (path.length === 4 && last === "backoff") return Object.keys(Supervision.Backoff.fields)
  if (path.length === 3 && last === "scaling") return Object.keys(Scaling.Policy.fields)
  if (path.length === 3 && last === "count") return Object.keys(Env.Range.fields)
  if (path.length === 3 && last === "resourceLimits") return Object.keys(Env.ResourceLimits.fields)
  if (path.length === 2 && path[0] === "envs") {
    const env = (input as { envs: Record<string, { kind?: unknown }> }).envs[path[1]!]
    const member = Env.Env.members.find((m) => m.fields.kind.literal === env?.kind)
    return member === undefined
      ? [...new Set(Env.Env.members.flatMap((m) => Object.keys(m.fields)))]
      : Object.keys(member.fields)
  }
  return []
}

const knownKinds: ReadonlyArray<string> = ["local", "thread", "process", "host", "cluster"]

/** An Env with an unknown `kind`, named at its own key (the union's issue would only name the Env). */
const findUnknownKind = (input: unknown): PlacementError | undefined => {
  const envs = typeof input === "object" && input !== null ? (input as { envs?: unknown }).envs : undefined
  if (typeof envs !== "object" || envs === null) return undefined
  for (const [name, env] of Object.entries(envs)) {
    if (typeof env !== "object" || env === null) continue
    const kind = (env as { kind?: unknown }).kind
    if (kind === undefined) {
      return new PlacementError({
        key: `envs.${name}.kind`,
        reason: `missing: every Env names its kind (${knownKinds.join(", ")})`
      })
    }
    if (typeof kind === "string" && !knownKinds.includes(kind)) {
      return new PlacementError({
        key: `envs.${name}.kind`,
        reason: `unknown kind "${kind}"${didYouMean(kind, knownKinds)} (known: ${knownKinds.join(", ")})`
      })
    }
  }
  return undefined
}

/**
 * Parses and validates a placement written as JSON.
 *
 * @since 0.1.0
 * @category decoding
 */
export const fromJson = (text: string, source = "(json)"): Effect.Effect<Placement, PlacementError> =>
  Effect.suspend(() => {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (cause) {
      return Effect.fail(new PlacementError({ key: source, reason: `not valid JSON: ${(cause as Error).message}` }))
    }
    return decode(value)
  })

/**
 * Reads a placement from a JSON file.
 *
 * @since 0.1.0
 * @category decoding
 */
export const fromFile = (path: string): Effect.Effect<Placement, PlacementError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(path)
      .pipe(Effect.mapError((cause) => new PlacementError({ key: path, reason: `cannot read: ${cause.message}` })))
    return yield* fromJson(text, path)
  })

/**
 * The placement named by configuration: `CORPS_PLACEMENT` holds the JSON of a
 * placement; when it is absent, every Worker is local.
 *
 * @since 0.1.0
 * @category decoding
 */
export const fromConfig: Effect.Effect<Placement, PlacementError> = Effect.gen(function* () {
  const text = yield* Config.option(Config.String("CORPS_PLACEMENT")).pipe(
    Effect.mapError((error) => new PlacementError({ key: "CORPS_PLACEMENT", reason: error.message }))
  )
  return Option.isSome(text) ? yield* fromJson(text.value, "CORPS_PLACEMENT") : local
})

/**
 * The placement a Corps uses when it is given none: by default the one named
 * by configuration ({@link fromConfig}).
 *
 * @since 0.1.0
 * @category services
 */
export class CurrentPlacement extends Context.Service<CurrentPlacement, Placement>()("effect-corps/Placement") {}

/**
 * Provides a placement to the Corps built below it. The Corps checks it like
 * one read from a file: a bad entry (an unknown key, say) fails the Corps'
 * layer with its `PlacementError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (placement: Placement): Layer.Layer<CurrentPlacement> => Layer.succeed(CurrentPlacement, placement)

/**
 * Provides the placement named by configuration (`CORPS_PLACEMENT`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromConfig: Layer.Layer<CurrentPlacement, PlacementError> = Layer.effect(CurrentPlacement, fromConfig)

/**
 * Provides the placement read from a JSON file.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromFile = (path: string): Layer.Layer<CurrentPlacement, PlacementError, FileSystem.FileSystem> =>
  Layer.effect(CurrentPlacement, fromFile(path))

const kindDefaults: Readonly<Record<string, Env.Env>> = {
  local: { kind: "local" },
  thread: { kind: "thread" },
  process: { kind: "process" }
}

/**
 * Resolves where each of `workers` lives, checking every reference: unknown
 * Workers and Envs are PlacementErrors. (Whether an Env kind can be started
 * is checked by the Corps, which knows the providers in context.)
 *
 * @since 0.1.0
 * @category resolving
 */
export const resolve = (
  placement: Placement,
  workers: ReadonlyArray<string>
): Effect.Effect<ReadonlyMap<string, Resolved>, PlacementError> =>
  Effect.suspend(() => {
    const known = new Set(workers)
    const envs = placement.envs ?? {}
    const resolveEnv = (name: string, key: string): Env.Env | PlacementError => {
      const env = envs[name] ?? kindDefaults[name]
      if (env === undefined) {
        const names = [...Object.keys(envs), ...Object.keys(kindDefaults)].join(", ")
        return new PlacementError({ key, reason: `unknown Env "${name}" (known: ${names})` })
      }
      return env
    }
    for (const name of Object.keys(placement.workers ?? {})) {
      if (!known.has(name)) {
        return Effect.fail(
          new PlacementError({
            key: `workers.${name}`,
            reason: `unknown Worker (this Corps has: ${workers.join(", ")})`
          })
        )
      }
    }
    const defaultName = placement.default ?? "local"
    const resolved = new Map<string, Resolved>()
    for (const worker of workers) {
      const entry = placement.workers?.[worker]
      const envName = entry === undefined ? defaultName : typeof entry === "string" ? entry : entry.env
      const key =
        entry === undefined ? "default" : typeof entry === "string" ? `workers.${worker}` : `workers.${worker}.env`
      const env = resolveEnv(envName, key)
      if (env instanceof PlacementError) return Effect.fail(env)
      resolved.set(worker, {
        envName,
        env,
        strategy: typeof entry === "object" ? (entry.strategy ?? "auto") : "auto",
        replicas: typeof entry === "object" ? entry.replicas : undefined,
        ...(typeof entry === "object" && entry.supervision !== undefined ? { supervision: entry.supervision } : {})
      })
    }
    return Effect.succeed(resolved)
  })

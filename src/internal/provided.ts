/**
 * Looking a Worker up in the fiber's context: a Worker that no Corps
 * provides is a `WorkerNotProvided` defect naming the Worker and the Corps in
 * context, not Effect's bare `Service not found`.
 *
 * Each Corps adds a record of itself to the context it provides (under a key
 * of its own, so merged Corps all stay visible); the records are read only
 * when a lookup fails.
 */
import { Context, Effect, Effectable, Exit } from "effect"
import { WorkerNotProvided } from "../CorpsError.ts"

/** What a Corps in context provides: its public members, and who owns each private one. */
export interface CorpsRecord {
  readonly name: string
  readonly members: ReadonlyArray<string>
  /** Private members (of Corps made with `Corps.make`), with the members that own them. */
  readonly privateTo: ReadonlyMap<string, ReadonlyArray<string>>
}

const recordPrefix = "effect-corps/Corps/"

/** The context key of one Corps' record. */
export const recordKey = (corpsId: string): Context.Key<CorpsRecord, CorpsRecord> =>
  Context.Service<CorpsRecord, CorpsRecord>(`${recordPrefix}${corpsId}`)

/** The error for `worker` missing from `context`, from the records of the Corps in it. */
export const notProvided = (worker: string, context: Context.Context<never>): WorkerNotProvided => {
  const records: Array<CorpsRecord> = []
  for (const [key, value] of context.mapUnsafe) {
    if (key.startsWith(recordPrefix)) records.push(value as CorpsRecord)
  }
  return new WorkerNotProvided({
    worker,
    corps: records.map((r) => r.name),
    provided: [...new Set(records.flatMap((r) => r.members))],
    privateTo: [...new Set(records.flatMap((r) => r.privateTo.get(worker) ?? []))]
  })
}

/** The handle of `key` in the fiber's context, or the `WorkerNotProvided` defect. */
const lookup = (key: Context.Key<any, any>, context: Context.Context<never>): Exit.Exit<any> => {
  const handle = Context.getOrUndefined(context, key)
  return handle === undefined ? Exit.die(notProvided(key.key, context)) : Exit.succeed(handle)
}

/**
 * Makes a Worker's service key (a `Context.Service` class) look its handle up
 * through {@link lookup} when yielded, used or accessed, instead of Effect's
 * own lookup: the same cost when the handle is there.
 */
export const withLookup = (key: Context.Key<any, any>): void => {
  workerKeyProto ??= makeWorkerKeyProto(Object.getPrototypeOf(key))
  Object.setPrototypeOf(key, workerKeyProto)
}

let workerKeyProto: object | undefined

/** Effect's prototype of service keys, with the lookups replaced. */
const makeWorkerKeyProto = (service: any): object => ({
  ...service,
  ...Effectable.Prototype<Effect.Effect<any>>({
    label: "Service",
    evaluate(fiber) {
      return lookup(this as any, fiber.context)
    }
  }),
  toJSON: service.toJSON,
  use(this: Context.Key<any, any>, f: (handle: any) => Effect.Effect<any, any, any>) {
    return Effect.withFiber((fiber) => {
      const handle = Context.getOrUndefined(fiber.context, this)
      return handle === undefined ? Exit.die(notProvided(this.key, fiber.context)) : f(handle)
    })
  },
  useSync(this: Context.Key<any, any>, f: (handle: any) => any) {
    return Effect.withFiber((fiber) => Exit.map(lookup(this, fiber.context), f))
  }
})

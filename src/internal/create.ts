/**
 * Created instances (`Worker.create`): their ids, where they go, and the
 * program that makes them.
 *
 * A created instance is an ordinary Conc instance whose key says two things
 * every Env can read without asking anyone: the slot it lives in (for thread
 * and process Envs, read by `routing.ts` `hostFor`, so no directory is needed
 * for fixed-count Envs) and its init value, JSON-encoded with the contract's
 * `init` Schema (so the builder finds it wherever the key lands, a restarted
 * Env or a cluster runner included). A random UUID keeps ids apart across
 * Envs and hosts:
 *
 *     $c:<slot or empty>:<uuid>:<init as JSON>
 *
 * Two hidden methods, added to a contract that declares an `init`, carry the
 * lifetime through every transport unchanged: `$start` (its first call
 * builds the instance, so `create` fails when the builder does) and `$close`
 * (runs the instance's finalizers; later calls fail with `InstanceClosed`).
 */
import { Effect, Exit, Schema, Scope } from "effect"
import { type CallError, InvalidInit, InvalidLocation } from "../CorpsError.ts"
import type { HandleBase, WorkerEntry } from "./handle.ts"

const PREFIX = "$c:"

/** The hidden method whose first call builds a created instance. */
export const START = "$start"
/** The hidden method that closes a created instance. */
export const CLOSE = "$close"

/**
 * Where a Worker's instances can live, as every runtime of the Corps sees it:
 * its Env's name and kind, and the slots (thread or process indexes) that
 * hold its Conc instances. A cluster Env has none (the shard decides).
 */
export interface Location {
  readonly env: string
  readonly kind: string
  readonly slots: ReadonlyArray<number>
}

/** Where `create` puts instances: see `Worker.Where`. */
export type Where = "auto" | "perEnv" | { readonly env: string; readonly index: number }

/** A new created-instance key. `slot` is undefined where the Env does not route by slot. */
export const createdKey = (slot: number | undefined, init: string): string =>
  `${PREFIX}${slot ?? ""}:${crypto.randomUUID()}:${init}`

/** Whether `key` names a created instance. */
export const isCreatedKey = (key: string): boolean => key.charCodeAt(0) === 36 && key.startsWith(PREFIX)

/** The slot a created instance's key names, if any (the explicit location `hostFor` honours). */
export const slotOf = (key: string): number | undefined => {
  if (!isCreatedKey(key)) return undefined
  const end = key.indexOf(":", PREFIX.length)
  if (end <= PREFIX.length) return undefined
  const slot = Number(key.slice(PREFIX.length, end))
  return Number.isInteger(slot) && slot >= 0 ? slot : undefined
}

/** The JSON-encoded init of a created instance's key; undefined for any other key. */
export const encodedInitOf = (key: string): string | undefined => {
  if (!isCreatedKey(key)) return undefined
  const slotEnd = key.indexOf(":", PREFIX.length)
  const uuidEnd = slotEnd < 0 ? -1 : key.indexOf(":", slotEnd + 1)
  return uuidEnd < 0 ? undefined : key.slice(uuidEnd + 1)
}

/** The codec between an init value and the string its keys carry. */
export const initCodec = (init: Schema.Top): Schema.Codec<unknown, string> =>
  Schema.fromJsonString(Schema.toCodecJson(init as any)) as any

/** Live instances this runtime created, per slot of each Worker entry: what "least loaded" reads. */
const live = new WeakMap<WorkerEntry, Map<number, number>>()
/** Where the last automatic pick stopped, per entry: ties go round-robin from there. */
const cursors = new WeakMap<WorkerEntry, number>()

const counts = (entry: WorkerEntry): Map<number, number> => {
  let found = live.get(entry)
  if (found === undefined) {
    found = new Map()
    live.set(entry, found)
  }
  return found
}

/** The least-loaded slot (fewest live instances created from here), round-robin among equals. */
const leastLoaded = (entry: WorkerEntry, slots: ReadonlyArray<number>, picked: Map<number, number>): number => {
  const byslot = counts(entry)
  const start = cursors.get(entry) ?? 0
  let best = -1
  let bestLoad = Number.POSITIVE_INFINITY
  for (let i = 0; i < slots.length; i++) {
    const at = (start + i) % slots.length
    const load = (byslot.get(slots[at]!) ?? 0) + (picked.get(slots[at]!) ?? 0)
    if (load < bestLoad) {
      best = at
      bestLoad = load
    }
  }
  cursors.set(entry, (best + 1) % slots.length)
  // Picks of one `create` count at once, so `num` instances spread.
  picked.set(slots[best]!, (picked.get(slots[best]!) ?? 0) + 1)
  return slots[best]!
}

const describe = (location: Location): string =>
  location.kind === "cluster"
    ? `Env "${location.env}" (cluster)`
    : `Env "${location.env}" (${location.kind}, slots ${location.slots.join(", ")})`

/**
 * The slots of the instances to create (undefined: no slot in the key), or
 * why `where` cannot be honoured.
 */
export const pickSlots = (
  worker: string,
  entry: WorkerEntry,
  where: Where,
  num: number
): Array<number | undefined> | InvalidLocation => {
  if (!Number.isInteger(num) || num < 1) {
    return new InvalidLocation({ worker, reason: `num must be an integer ≥ 1 (got ${num})` })
  }
  const location = entry.location
  const routed = location !== undefined && (location.kind === "thread" || location.kind === "process")
  if (where === "auto") {
    const picked = new Map<number, number>()
    return Array.from({ length: num }, () => (routed ? leastLoaded(entry, location.slots, picked) : undefined))
  }
  if (location === undefined) {
    return where === "perEnv"
      ? Array.from({ length: num }, () => undefined)
      : new InvalidLocation({ worker, reason: `the placement of ${worker} is not known in this runtime: use "auto"` })
  }
  if (location.kind === "cluster") {
    return new InvalidLocation({
      worker,
      reason: `${worker} is placed in ${describe(location)}: the entity's shard decides where an instance lives, so only where: "auto" is possible`
    })
  }
  const slots = location.kind === "local" ? [0] : location.slots
  if (where === "perEnv") return slots.flatMap((slot) => Array.from({ length: num }, () => (routed ? slot : undefined)))
  if (where.env !== location.env || !slots.includes(where.index)) {
    return new InvalidLocation({
      worker,
      reason: `no slot ${where.env}#${where.index} for ${worker}: it is placed in ${describe(location)}`
    })
  }
  return Array.from({ length: num }, () => (routed ? where.index : undefined))
}

/** Closes one created instance (the hidden `$close` call). */
export const closeInstance = (handle: HandleBase): Effect.Effect<void, CallError> =>
  handle.target.call(CLOSE, undefined) as Effect.Effect<void, CallError>

/**
 * Creates instances of the Worker whose default handle is `handle`: checks
 * the init and the location before sending anything, starts every instance
 * (its builder runs now), and ties each one to the current Scope. If any
 * fails to start, those that started are closed again and the first failure
 * is the result.
 */
export const create = (
  handle: HandleBase,
  codec: Schema.Codec<unknown, string>,
  init: unknown,
  where: Where,
  num: number
): Effect.Effect<Array<HandleBase>, CallError | InvalidInit | InvalidLocation, Scope.Scope> =>
  Effect.suspend((): Effect.Effect<Array<HandleBase>, CallError | InvalidInit | InvalidLocation, Scope.Scope> => {
    const worker = handle.worker
    const encoded = Schema.encodeUnknownExit(codec)(init)
    if (Exit.isFailure(encoded)) {
      const error = Exit.findErrorOption(encoded)
      return Effect.fail(
        new InvalidInit({ worker, issue: error._tag === "Some" ? error.value.message : "cannot be encoded" })
      )
    }
    const slots = pickSlots(worker, handle.entry, where, num)
    if (slots instanceof InvalidLocation) return Effect.fail(slots)
    const byslot = counts(handle.entry)
    const created = slots.map((slot) => ({ slot, handle: handle.instance(createdKey(slot, encoded.value)) }))
    for (const { slot } of created) if (slot !== undefined) byslot.set(slot, (byslot.get(slot) ?? 0) + 1)
    const release = (slot: number | undefined) =>
      Effect.sync(() => {
        if (slot !== undefined) byslot.set(slot, (byslot.get(slot) ?? 1) - 1)
      })
    const close = ({ slot, handle }: (typeof created)[number]) =>
      Effect.ensuring(Effect.asVoid(Effect.exit(closeInstance(handle))), release(slot))
    return Effect.gen(function* () {
      const scope = yield* Effect.scope
      const started = yield* Effect.forEach(
        created,
        (one) => Effect.exit(one.handle.target.call(START, undefined) as Effect.Effect<void, CallError>),
        { concurrency: "unbounded" }
      )
      const failed = started.find((exit) => Exit.isFailure(exit))
      if (failed !== undefined) {
        // Loses nothing: the ones that did start are closed again; those that failed were never built.
        yield* Effect.forEach(created, (one, i) => (Exit.isSuccess(started[i]!) ? close(one) : release(one.slot)), {
          concurrency: "unbounded",
          discard: true
        })
        return yield* Effect.failCause(failed.cause)
      }
      for (const one of created) yield* Scope.addFinalizer(scope, close(one))
      return created.map((one) => one.handle)
    })
  })

/**
 * The Corps live in this runtime (thread or process), by id.
 *
 * A handle travels as `{ corps, worker, key }`; decoding it looks the Corps up
 * here. The registry is global to the JavaScript realm on purpose: a handle
 * decoded anywhere in this Env must reach the same instances, whichever Layer
 * or runtime decodes it.
 */
import type { HandleBase, HandleClass, WorkerEntry } from "./handle.ts"
import { unreachableTarget } from "./handle.ts"

const registryKey = Symbol.for("effect-corps/registry")

/**
 * By Corps id, by Worker name: the entries registered, latest last. Several
 * runtimes may register the same id (Corps placing Workers on one cluster all
 * register them under the cluster's id): the latest live one answers, and
 * each unregisters only its own.
 */
type Registry = Map<string, Map<string, Array<WorkerEntry>>>

const registry: Registry = ((globalThis as any)[registryKey] ??= new Map()) as Registry

/**
 * Where handles of Corps that live in ANOTHER program are resolved (ExtCorps,
 * src/external/): each connection to a program adds one. Asked only when the
 * Corps is not registered here; the first that knows the Corps answers.
 */
export type ExternalResolver = (corps: string, worker: string, HandleClass: HandleClass) => WorkerEntry | undefined

interface Hooks {
  readonly resolvers: Set<ExternalResolver>
  /** Called with each Corps id registered here for the first time (ExtCorps announces it to its peers). */
  readonly listeners: Set<(corps: string) => void>
}

const hooks: Hooks = ((globalThis as any)[Symbol.for("effect-corps/registry-hooks")] ??= {
  resolvers: new Set(),
  listeners: new Set()
}) as Hooks

/** Adds a resolver of external Corps ids; returns its removal. */
export const addExternalResolver = (resolver: ExternalResolver): (() => void) => {
  hooks.resolvers.add(resolver)
  return () => hooks.resolvers.delete(resolver)
}

/** Calls `listener` with every Corps id registered from now on; returns its removal. */
export const onRegister = (listener: (corps: string) => void): (() => void) => {
  hooks.listeners.add(listener)
  return () => hooks.listeners.delete(listener)
}

/** The ids of the Corps registered in this runtime. */
export const corpsIds = (): ReadonlyArray<string> => [...registry.keys()]

/** Makes the Workers of Corps `corps` reachable by handles. Returns the unregister function. */
export const register = (corps: string, entries: ReadonlyMap<string, WorkerEntry>): (() => void) => {
  let workers = registry.get(corps)
  if (workers === undefined) {
    workers = new Map()
    registry.set(corps, workers)
    for (const listener of hooks.listeners) listener(corps)
  }
  const added = [...entries]
  for (const [worker, entry] of added) {
    const stack = workers.get(worker)
    if (stack === undefined) workers.set(worker, [entry])
    else stack.push(entry)
  }
  let done = false
  return () => {
    if (done) return
    done = true
    const current = registry.get(corps)
    if (current === undefined) return
    for (const [worker, entry] of added) {
      const stack = current.get(worker)
      if (stack === undefined) continue
      const at = stack.lastIndexOf(entry)
      if (at >= 0) stack.splice(at, 1)
      if (stack.length === 0) current.delete(worker)
    }
    if (current.size === 0) registry.delete(corps)
  }
}

/** The entry for `worker` in Corps `corps`, if that Corps lives here. */
export const lookup = (corps: string, worker: string): WorkerEntry | undefined => {
  const stack = registry.get(corps)?.get(worker)
  return stack === undefined ? undefined : stack[stack.length - 1]
}

/** Resolves an encoded handle; a handle whose Corps is unknown here fails each call with UnknownWorker. */
export const resolveHandle = (
  corps: string,
  worker: string,
  key: string,
  fallback: (corps: string) => WorkerEntry
): HandleBase => {
  const entry = lookup(corps, worker) ?? external(corps, worker, fallback) ?? fallback(corps)
  return new entry.HandleClass(entry, key, entry.target(key))
}

const external = (corps: string, worker: string, fallback: (corps: string) => WorkerEntry): WorkerEntry | undefined => {
  if (hooks.resolvers.size === 0) return undefined
  const HandleClass = fallback(corps).HandleClass
  for (const resolver of hooks.resolvers) {
    const entry = resolver(corps, worker, HandleClass)
    if (entry !== undefined) return entry
  }
  return undefined
}

/** An entry whose every call fails with UnknownWorker. */
export const unreachableEntry = (
  corps: string,
  worker: string,
  HandleClass: WorkerEntry["HandleClass"]
): WorkerEntry => ({
  corps,
  worker,
  HandleClass,
  target: () => unreachableTarget(worker, corps)
})

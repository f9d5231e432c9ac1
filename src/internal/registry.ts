/**
 * The Corps live in this runtime (thread or process), by id.
 *
 * A handle travels as `{ corps, worker, key }`; decoding it looks the Corps up
 * here. The registry is global to the JavaScript realm on purpose: a handle
 * decoded anywhere in this Env must reach the same instances, whichever Layer
 * or runtime decodes it.
 */
import type { HandleBase, WorkerEntry } from "./handle.ts"
import { unreachableTarget } from "./handle.ts"

const registryKey = Symbol.for("effect-corps/registry")

type Registry = Map<string, Map<string, WorkerEntry>>

const registry: Registry = ((globalThis as any)[registryKey] ??= new Map()) as Registry

/** Makes the Workers of Corps `corps` reachable by handles. Returns the unregister function. */
export const register = (corps: string, entries: ReadonlyMap<string, WorkerEntry>): (() => void) => {
  registry.set(corps, new Map(entries))
  return () => {
    registry.delete(corps)
  }
}

/** The entry for `worker` in Corps `corps`, if that Corps lives here. */
export const lookup = (corps: string, worker: string): WorkerEntry | undefined => registry.get(corps)?.get(worker)

/** Resolves an encoded handle; a handle whose Corps is unknown here fails each call with UnknownWorker. */
export const resolveHandle = (
  corps: string,
  worker: string,
  key: string,
  fallback: (corps: string) => WorkerEntry
): HandleBase => {
  const entry = lookup(corps, worker) ?? fallback(corps)
  return new entry.HandleClass(entry, key, entry.target(key))
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

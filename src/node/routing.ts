/**
 * Where calls go among the threads or processes of one Env name: which of
 * them serve a Worker (its hosts), and which host an instance key lives on.
 * The caller and every Env use these same functions, so they always agree.
 */
import { slotOf } from "../internal/create.ts"
import type * as Placement from "../Placement.ts"

/**
 * Which of an Env's `count` processes or threads serve a Worker: all of them
 * (`per-env`, and `auto` without `replicas`), the first (`pinned`), or
 * `replicas` of them spread evenly (`auto` with `replicas`).
 */
export const hostsOf = (resolved: Placement.Resolved, count: number): ReadonlyArray<number> => {
  if (resolved.strategy === "pinned") return [0]
  const replicas = resolved.strategy === "per-env" ? count : Math.min(resolved.replicas ?? count, count)
  return Array.from({ length: replicas }, (_, i) => Math.floor((i * count) / replicas))
}

/**
 * Which host an instance key lives on: a created instance (`Worker.create`)
 * where its key says ({@link explicitHost}); a key that is a small whole
 * number `k` on `hosts[k mod n]` (so keys "0".."n-1" put one instance on
 * each); any other key by a stable, well-spread hash (FNV-1a).
 */
export const hostFor = (key: string, hosts: ReadonlyArray<number>): number =>
  explicitHost(key, hosts) ?? hosts[hashKey(key) % hosts.length]!

/**
 * The host a created instance's key names, when it is one of `hosts`: the
 * location chosen at `create` travels in the id, so every caller and Env
 * routes it alike with no directory.
 */
export const explicitHost = (key: string, hosts: ReadonlyArray<number>): number | undefined => {
  const slot = slotOf(key)
  return slot !== undefined && hosts.includes(slot) ? slot : undefined
}

const hashKey = (key: string): number => {
  if (/^\d{1,9}$/.test(key)) return Number(key)
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/**
 * What two programs compare before they call each other (ExtCorps): a hash
 * per method of a Worker contract, and the JSON Schemas `corps call` shows.
 *
 * A method's fingerprint is the JSON Schema document (Effect's
 * `Schema.toJsonSchemaDocument`, derived from the Schema AST) of its payload,
 * success and error, plus whether it streams, serialized with sorted keys and
 * hashed with SHA-256. Two contracts declared the same way in two programs
 * hash the same; a field added, renamed or retyped changes the hash of the
 * methods that use it. Annotations that only document (descriptions) are
 * part of the JSON Schema and so of the hash: a contract is compared as
 * written.
 */
import { createHash } from "node:crypto"
import { Schema } from "effect"
import { codecsOf } from "../internal/codec.ts"
import type { AnyWorker } from "../Worker.ts"

/** The JSON Schemas of one method, as `describe` answers them. */
export interface MethodDescription {
  readonly payload: unknown
  readonly success: unknown
  readonly error: unknown
  readonly stream: boolean
  readonly idempotent: boolean
}

const documentOf = (schema: Schema.Top): unknown => {
  try {
    return Schema.toJsonSchemaDocument(schema as Schema.Top)
  } catch (error) {
    // A Schema with no JSON form (a declared class without one) still has a stable shape to compare.
    return { unrepresentable: String((schema.ast as { _tag?: unknown })._tag), reason: String(error) }
  }
}

/** The JSON Schemas of every method of `worker`, by method name (cached). */
export const describe = (worker: AnyWorker): Readonly<Record<string, MethodDescription>> => {
  let found = descriptions.get(worker)
  if (found === undefined) {
    const out: Record<string, MethodDescription> = {}
    for (const [method, codec] of codecsOf(worker)) {
      const rpc = worker.group.requests.get(method) as { readonly payloadSchema: Schema.Top }
      out[method] = {
        payload: documentOf(rpc.payloadSchema),
        success: documentOf(codec.spec.success ?? Schema.Void),
        error: documentOf(codec.spec.error ?? Schema.Never),
        stream: codec.spec.stream === true,
        idempotent: codec.spec.idempotent === true
      }
    }
    found = out
    descriptions.set(worker, found)
  }
  return found
}
const descriptions = new WeakMap<AnyWorker, Readonly<Record<string, MethodDescription>>>()

/** JSON with object keys sorted at every level: the same value always gives the same text. */
const stable = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v
  )

/** The fingerprint of each method of `worker` (see the module's comment). */
export const hashes = (worker: AnyWorker): Readonly<Record<string, string>> => {
  const out: Record<string, string> = {}
  for (const [method, d] of Object.entries(describe(worker))) {
    out[method] = createHash("sha256")
      .update(stable({ payload: d.payload, success: d.success, error: d.error, stream: d.stream }))
      .digest("hex")
      .slice(0, 32)
  }
  return out
}

/**
 * The methods whose fingerprints differ between `ours` and `theirs`: changed,
 * missing on their side, or only on theirs. Sorted; empty when they agree.
 */
export const differing = (
  ours: Readonly<Record<string, string>>,
  theirs: Readonly<Record<string, string>>
): ReadonlyArray<string> => {
  const names = new Set([...Object.keys(ours), ...Object.keys(theirs)])
  return [...names].filter((name) => ours[name] !== theirs[name]).sort()
}

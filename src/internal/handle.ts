/**
 * Handles: the typed references through which every call is made.
 *
 * One class is generated per Worker contract, with one prototype method per
 * contract method, so a handle is a small object (its entry, key and target)
 * and a call is a property read and a method call away from the Target.
 */
import { Effect, Stream } from "effect"
import { UnknownWorker } from "../CorpsError.ts"
import type { AnyWorker } from "../Worker.ts"
import type { Location } from "./create.ts"
import type { CallSeries } from "./recorder.ts"
import type * as Wire from "./wire.ts"

/** Where a handle's calls go: the FastPath, a serialization check, or another Env. */
export interface Target {
  call(method: string, payload: unknown): Effect.Effect<unknown, unknown>
  stream(method: string, payload: unknown): Stream.Stream<unknown, unknown>
  /**
   * A call that carries the caller's span to another Env (tracing on): only
   * Targets that cross an Env boundary have it.
   */
  callTraced?(method: string, payload: unknown, trace: Wire.TraceSource): Effect.Effect<unknown, unknown>
  /**
   * A call counted into `series` (metrics on) by the Target itself, at no
   * more cost than one allocation of its own: the FastPath Func times it in
   * its own step, a Target to another Env in the callback that resumes its
   * caller (no `onExit` frame). `trace` as in {@link callTraced}. Targets
   * without it, or answering `undefined` (not for this call), are wrapped by
   * the monitor (src/internal/observe.ts).
   */
  callMetered?(
    method: string,
    payload: unknown,
    series: CallSeries,
    trace?: Wire.TraceSource | undefined
  ): Effect.Effect<unknown, unknown> | undefined
}

/** What a Corps knows about one of its Workers: enough to make handles for any key. */
export interface WorkerEntry {
  readonly corps: string
  readonly worker: string
  /** The Target for one instance key. */
  target(key: string): Target
  /** The generated handle class of the Worker's contract. */
  readonly HandleClass: HandleClass
  /** Where the Worker's instances can live (read by `Worker.create`); absent where the placement is not known. */
  readonly location?: Location | undefined
}

/** The Worker contract of each generated handle class (set by `Worker.Service`). */
const contracts = new WeakMap<HandleClass, AnyWorker>()

/** Records the Worker contract whose handles `HandleClass` makes. */
export const registerContract = (HandleClass: HandleClass, worker: AnyWorker): void => {
  contracts.set(HandleClass, worker)
}

/** The Worker contract of a handle, when its class was made by `Worker.Service`. */
export const contractOf = (handle: HandleBase): AnyWorker | undefined => contracts.get(handle.entry.HandleClass)

/** The Worker contract whose handles `HandleClass` makes. */
export const contractOfClass = (HandleClass: HandleClass): AnyWorker | undefined => contracts.get(HandleClass)

/** The constructor of a generated handle class. */
export type HandleClass = new (entry: WorkerEntry, key: string, target: Target) => HandleBase

/** Marks handle objects, for the Handle Schema's type guard. */
export const HandleTypeId: unique symbol = Symbol.for("effect-corps/Handle")

/** The part of every handle that is not a contract method. */
export class HandleBase {
  /** On the prototype (see below), not on each handle: handles are made per key. */
  declare readonly [HandleTypeId]: typeof HandleTypeId
  readonly entry: WorkerEntry
  readonly key: string
  readonly target: Target
  constructor(entry: WorkerEntry, key: string, target: Target) {
    this.entry = entry
    this.key = key
    this.target = target
  }
  /** The Worker's name. */
  get worker(): string {
    return this.entry.worker
  }
  /** The id of the Corps that serves the Worker. */
  get corps(): string {
    return this.entry.corps
  }
  /** A handle to the instance with `key` (created on its first call). */
  instance(key: string): HandleBase {
    return key === this.key ? this : new this.entry.HandleClass(this.entry, key, this.entry.target(key))
  }
  toJSON(): unknown {
    return { _id: "Handle", worker: this.worker, key: this.key, corps: this.corps }
  }
  toString(): string {
    return `Handle(${this.worker}[${this.key}] @ ${this.corps})`
  }
}

Object.defineProperty(HandleBase.prototype, HandleTypeId, { value: HandleTypeId, enumerable: false, writable: false })

/** Generates the handle class for a contract: one prototype method per contract method. */
export const makeHandleClass = (
  worker: string,
  methods: Readonly<Record<string, { readonly stream?: boolean | undefined }>>
): HandleClass => {
  const HandleClass = class extends HandleBase {}
  Object.defineProperty(HandleClass, "name", { value: `${worker}Handle` })
  for (const [method, spec] of Object.entries(methods)) {
    const call = spec.stream
      ? function (this: HandleBase, payload: unknown) {
          return this.target.stream(method, payload)
        }
      : function (this: HandleBase, payload: unknown) {
          return this.target.call(method, payload)
        }
    Object.defineProperty(HandleClass.prototype, method, { value: call, writable: false, enumerable: false })
  }
  return HandleClass
}

/** A Target that fails every call: used for handles whose Corps is not reachable here. */
export const unreachableTarget = (worker: string, corps: string): Target => {
  const error = new UnknownWorker({ worker, corps })
  return {
    call: () => Effect.fail(error),
    stream: () => Stream.fail(error)
  }
}

/** Whether `u` is a handle of the Worker named `worker`. */
export const isHandleOf =
  (worker: string) =>
  (u: unknown): u is HandleBase =>
    typeof u === "object" && u !== null && HandleTypeId in u && (u as HandleBase).worker === worker

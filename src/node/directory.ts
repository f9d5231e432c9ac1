/**
 * Where each instance of a Conc lives in a scaling Env: a directory of key →
 * slot kept by the caller, instead of the hash of a fixed-size Env. A key
 * stays on its slot while the Env grows and shrinks (a hash would move it,
 * and the instance with it); a new key goes to the least-loaded slot in
 * service, except a created instance's key (`Worker.create`) that names one
 * of the slots the Env never drains (those below its `min`): it goes there,
 * as in a fixed-count Env. Every creator of a key — the caller, or an Env
 * through the caller — asks this one directory, so two racing creators meet
 * one instance.
 *
 * An entry is dropped only when its slot is drained and the Env says the
 * instance is gone (passivated) with no call on its way to it, or when the
 * slot is removed; the next call then places the key afresh.
 */
import { slotOf } from "../internal/create.ts"

/** Where one key lives, and how many calls are on their way to it. */
export interface Entry {
  readonly slot: number
  inFlight: number
  /** Dropped from the directory: the next call looks the key up again. */
  dropped: boolean
}

/** The directory of one Conc Worker. */
export class Directory {
  readonly worker: string
  private readonly entries = new Map<string, Entry>()
  /** Keys per slot, to place new keys and drain slots. */
  private readonly bySlot = new Map<number, Set<string>>()
  /** The slot for a new key. */
  private readonly place: (keysOn: (slot: number) => number) => number
  /** Whether a created key's slot is honoured: a slot that is never drained (below the Env's `min`). */
  private readonly honours: (slot: number) => boolean

  constructor(
    worker: string,
    place: (keysOn: (slot: number) => number) => number,
    honours: (slot: number) => boolean = () => false
  ) {
    this.worker = worker
    this.place = place
    this.honours = honours
  }

  /** The entry of `key`, placing it first when it has none. */
  entry(key: string): Entry {
    const found = this.entries.get(key)
    if (found !== undefined) return found
    // `create` chose the slot among the never-drained ones (its Location); any other slot is placed afresh.
    const named = slotOf(key)
    const slot =
      named !== undefined && this.honours(named) ? named : this.place((index) => this.bySlot.get(index)?.size ?? 0)
    const entry: Entry = { slot, inFlight: 0, dropped: false }
    this.entries.set(key, entry)
    let keys = this.bySlot.get(slot)
    if (keys === undefined) {
      keys = new Set()
      this.bySlot.set(slot, keys)
    }
    keys.add(key)
    return entry
  }

  /** The keys placed on `slot`. */
  keysOn(slot: number): ReadonlyArray<string> {
    return [...(this.bySlot.get(slot) ?? [])]
  }

  /** How many keys are placed. */
  get size(): number {
    return this.entries.size
  }

  /**
   * Drops `key` if no call is on its way to it; answers whether it did. The
   * Env said its instance is gone, and a call sent since would have rebuilt
   * it there: such an entry stays.
   */
  dropIfIdle(key: string): boolean {
    const entry = this.entries.get(key)
    if (entry === undefined) return true
    if (entry.inFlight > 0) return false
    this.forget(key, entry)
    return true
  }

  /** Drops every key of a removed slot. */
  dropSlot(slot: number): void {
    for (const key of this.keysOn(slot)) {
      const entry = this.entries.get(key)
      if (entry !== undefined) this.forget(key, entry)
    }
    this.bySlot.delete(slot)
  }

  private forget(key: string, entry: Entry): void {
    entry.dropped = true
    this.entries.delete(key)
    this.bySlot.get(entry.slot)?.delete(key)
  }
}

/**
 * Where each instance of a Conc lives in a scaling Env: a directory of key →
 * slot kept by the caller, instead of the hash of a fixed-size Env. A key
 * stays on its slot while the Env grows and shrinks (a hash would move it,
 * and the instance with it); a new key goes to the least-loaded slot in
 * service. Every creator of a key — the caller, or an Env through the
 * caller — asks this one directory, so two racing creators meet one
 * instance.
 *
 * An entry is dropped only when its slot is drained and the Env says the
 * instance is gone (passivated) with no call on its way to it, or when the
 * slot is removed; the next call then places the key afresh.
 */

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

  constructor(worker: string, place: (keysOn: (slot: number) => number) => number) {
    this.worker = worker
    this.place = place
  }

  /** The entry of `key`, placing it first when it has none. */
  entry(key: string): Entry {
    const found = this.entries.get(key)
    if (found !== undefined) return found
    const slot = this.place((index) => this.bySlot.get(index)?.size ?? 0)
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

/**
 * "Did you mean …?" for names typed by hand (placement keys, Env and Worker
 * names): the closest known name, when it is close enough to be a typo.
 */

/**
 * The known name closest to `name`, or `undefined` when none is plausibly
 * what was meant. Case is ignored; a swap of two neighbouring letters counts
 * as one edit (`cuont` → `count`), and the allowance grows with the length
 * (one edit up to 4 letters, two beyond), so short names do not match
 * everything.
 */
export const closest = (name: string, known: Iterable<string>): string | undefined => {
  const lower = name.toLowerCase()
  const allowance = lower.length <= 4 ? 1 : 2
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of known) {
    if (candidate === name) continue
    const distance = editDistance(lower, candidate.toLowerCase())
    if (distance <= allowance && distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/** ` (did you mean "x"?)`, or nothing when no known name is close. */
export const didYouMean = (name: string, known: Iterable<string>): string => {
  const match = closest(name, known)
  return match === undefined ? "" : ` (did you mean "${match}"?)`
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions. */
const editDistance = (a: string, b: string): number => {
  if (Math.abs(a.length - b.length) > 2) return Number.POSITIVE_INFINITY
  const rows = a.length + 1
  const cols = b.length + 1
  const d: Array<number> = new Array(rows * cols).fill(0)
  for (let i = 0; i < rows; i++) d[i * cols] = i
  for (let j = 0; j < cols; j++) d[j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let value = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, d[(i - 2) * cols + j - 2]! + 1)
      }
      d[i * cols + j] = value
    }
  }
  return d[rows * cols - 1]!
}

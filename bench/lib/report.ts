/**
 * Shared reporting for `npm run bench`: every suite records its figures here,
 * prints them as it goes, and `bench/index.ts` ends the run with one line of
 * JSON holding every figure (stable keys), so scripts can read the results.
 */

const figures: Record<string, number> = {}

/** Records one measured figure under a stable key and prints it. */
export const figure = (key: string, value: number, unit: string): number => {
  figures[key] = round(value)
  console.log(`  ${key.padEnd(52)} ${formatNumber(value).padStart(14)} ${unit}`)
  return value
}

/** Records `value / baseline` under a stable key and prints it with its target, if any. */
export const ratio = (key: string, value: number, baseline: number, target?: string): number => {
  const r = value / baseline
  figures[key] = round(r)
  console.log(`  ${key.padEnd(52)} ${r.toFixed(3).padStart(14)} ×${target ? `   (target ${target})` : ""}`)
  return r
}

/** Prints a section heading. */
export const section = (title: string): void => {
  console.log(`\n== ${title}`)
}

/** All figures recorded so far. */
export const allFigures = (): Readonly<Record<string, number>> => figures

/** Prints the closing JSON line. */
export const printJson = (): void => {
  console.log(JSON.stringify({ bench: "effect-corps", date: new Date().toISOString(), figures }))
}

const round = (n: number): number => (Math.abs(n) >= 100 ? Math.round(n) : Math.round(n * 1000) / 1000)

const formatNumber = (n: number): string => (Math.abs(n) >= 1000 ? Math.round(n).toLocaleString("en-US") : n.toFixed(3))

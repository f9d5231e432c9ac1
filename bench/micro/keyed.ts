/** Micro: 100,000 new string keys into a Map vs a null-prototype object. `npx node bench/micro/keyed.ts` */
const N = 100_000
for (let r = 0; r < 4; r++) {
  const keys = Array.from({ length: N }, (_, i) => `k${r}-${i}`)
  let t = performance.now()
  const map = new Map<string, object>()
  for (const k of keys) if (map.get(k) === undefined) map.set(k, { k })
  const tMap = performance.now() - t
  t = performance.now()
  const obj: Record<string, object> = Object.create(null)
  for (const k of keys) if (obj[k] === undefined) obj[k] = { k }
  const tObj = performance.now() - t
  console.log(`map ${((tMap * 1e6) / N).toFixed(0)} ns/key, object ${((tObj * 1e6) / N).toFixed(0)} ns/key`)
}

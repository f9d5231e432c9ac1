const N = 5_000_000
let x = 0
for (let r = 0; r < 3; r++) {
  let t = performance.now()
  for (let i = 0; i < N; i++) x += performance.now()
  const a = (performance.now() - t) / N * 1e6
  t = performance.now()
  for (let i = 0; i < N; i++) x += Date.now()
  const b = (performance.now() - t) / N * 1e6
  t = performance.now()
  for (let i = 0; i < N; i++) x += Number(process.hrtime.bigint() & 0xffffffn)
  const c = (performance.now() - t) / N * 1e6
  console.log(`perf.now ${a.toFixed(1)} ns, Date.now ${b.toFixed(1)} ns, hrtime.bigint ${c.toFixed(1)} ns`)
}

/**
 * Micro: what a `yield*` costs in an Effect.gen loop for the shapes a FastPath
 * call can take. ns per iteration, best of 5 rounds. `npx node bench/micro/yield-step.ts`
 */
import { Effect, Effectable, Exit } from "effect"

const N = 1_000_000
const bench = async (name: string, make: (i: number) => Effect.Effect<number, unknown>) => {
  const prog = Effect.gen(function* () {
    let x = 0
    for (let i = 0; i < N; i++) x = yield* make(i)
    return x
  })
  let best = Infinity
  for (let r = 0; r < 7; r++) {
    const t = performance.now()
    await Effect.runPromise(prog)
    best = Math.min(best, ((performance.now() - t) * 1e6) / N)
  }
  console.log(`${name.padEnd(48)} ${best.toFixed(1)} ns`)
}

class Step {
  started = false
  done = false
  value: unknown = undefined
  owner: any
  constructor(owner: any) {
    this.owner = owner
  }
  next(v: unknown) {
    if (this.started) {
      this.done = true
      this.value = v
      return this
    }
    this.started = true
    this.value = this.owner.step()
    return this
  }
  [Symbol.iterator]() {
    return this
  }
}
const proto: any = Effectable.Prototype<any>({
  label: "X",
  evaluate() {
    return this.step()
  }
})
proto.step = function () {
  return Exit.succeed(this.payload.n + 1)
}
const protoIter: any = Object.create(proto)
protoIter[Symbol.iterator] = function () {
  return new Step(this)
}
function Call(this: any, p: any) {
  this.payload = p
}
Call.prototype = proto
function CallIter(this: any, p: any) {
  this.payload = p
}
CallIter.prototype = protoIter

await bench("succeed (direct)", (n) => Effect.succeed(n + 1))
await bench("sync (direct stateful)", (n) => Effect.sync(() => n + 1))
await bench("suspend(succeed)", (n) => Effect.suspend(() => Effect.succeed(n + 1)))
await bench("custom primitive -> Exit", (n) => new (Call as any)({ n }))
await bench("custom primitive + iterator -> Exit", (n) => new (CallIter as any)({ n }))
await bench("withFiber -> Exit", (n) => Effect.withFiber(() => Effect.succeed(n + 1)))
await bench("catchCause(sync)", (n) =>
  Effect.catchCause(
    Effect.sync(() => n + 1),
    Effect.failCause
  )
)
await bench("onExit(sync, ()=>void)", (n) =>
  Effect.onExit(
    Effect.sync(() => n + 1),
    () => Effect.void
  )
)
await bench("onExitPrimitive(sync, ()=>undefined, true)", (n) =>
  Effect.onExitPrimitive(
    Effect.sync(() => n + 1),
    () => undefined,
    true
  )
)
await bench("onExitPrimitive(sync, ()=>undefined)", (n) =>
  Effect.onExitPrimitive(
    Effect.sync(() => n + 1),
    () => undefined
  )
)
await bench("onExitPrim(suspend(catchCause(sync)))", (n) =>
  Effect.onExitPrimitive(
    Effect.suspend(() =>
      Effect.catchCause(
        Effect.sync(() => n + 1),
        Effect.failCause
      )
    ),
    () => undefined,
    true
  )
)
// The Conc exclusive shape: exit hook frame, then a step that takes a flag, then catchCause around the handler's Effect.
const stepProto: any = Effectable.Prototype<any>({
  label: "Acquire",
  evaluate() {
    this.owned = true
    return Effect.catchCause(this.effect, Effect.failCause)
  }
})
function Acquire(this: any, effect: any) {
  this.effect = effect
  this.owned = false
}
Acquire.prototype = stepProto
await bench("onExitPrim(acquire step(catchCause(sync)))", (n) => {
  const run = new (Acquire as any)(Effect.sync(() => n + 1))
  return Effect.onExitPrimitive(run, () => {
    if (run.owned) run.owned = false
    return undefined
  })
})
await bench("onExitPrim(acquire step(sync)) [no defect mapping]", (n) => {
  const run = new (Acquire as any)(Effect.sync(() => n + 1))
  return Effect.onExitPrimitive(
    Effect.sync(() => n + 1),
    () => {
      if (run.owned) run.owned = false
      return undefined
    }
  )
})
await bench("uninterruptibleMask(restore(sync))", (n) =>
  Effect.uninterruptibleMask((restore) => restore(Effect.sync(() => n + 1)))
)
await bench("matchCauseEffect(sync)", (n) =>
  Effect.matchCauseEffect(
    Effect.sync(() => n + 1),
    { onSuccess: Effect.succeed, onFailure: Effect.failCause }
  )
)
await bench("exit(sync)", (n) => Effect.exit(Effect.sync(() => n + 1)) as any)
await bench("tapCause(sync)", (n) =>
  Effect.tapCause(
    Effect.sync(() => n + 1),
    () => Effect.void
  )
)
await bench("catchDefect(sync)", (n) =>
  Effect.catchDefect(
    Effect.sync(() => n + 1),
    Effect.die
  )
)
await bench("onError(sync)", (n) =>
  Effect.onError(
    Effect.sync(() => n + 1),
    () => Effect.void
  )
)

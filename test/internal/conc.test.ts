/**
 * The Conc FastPath driven directly: one call at a time per instance, FIFO,
 * hand-off in a loop (tens of thousands of queued callers must not overflow
 * the stack — the symptom would be a hang), interruption, mailbox capacity,
 * concurrent methods, and many cheap keyed instances.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import { CorpsClosed, MailboxFull } from "../../src/CorpsError.ts"
import { type ConcShared, ConcWorker } from "../../src/internal/conc.ts"
import type { AnyHandler } from "../../src/internal/invoke.ts"

/** A Conc Worker named "W" of the given builder, with the given mailbox and concurrent methods. */
const makeConc = (
  build: ConcShared["build"],
  options?: {
    readonly capacity?: number
    readonly onFull?: "suspend" | "fail"
    readonly concurrent?: ReadonlyArray<string>
  }
): ConcWorker =>
  new ConcWorker({
    worker: "W",
    corps: "corps-test",
    closed: false,
    mailbox: { capacity: options?.capacity ?? 1024, onFull: options?.onFull ?? "suspend" },
    concurrent: new Set(options?.concurrent ?? []),
    build
  })

/**
 * One instance's observable state and handlers. `block(id)` holds the
 * instance until `release(id)`; the push methods log their argument and
 * return the log's length.
 */
const makeState = () => {
  const log: Array<number> = []
  const gates = new Map<string, { started: Deferred.Deferred<void>; gate: Deferred.Deferred<void> }>()
  const gatesOf = (id: string) => {
    let g = gates.get(id)
    if (g === undefined) {
      g = { started: Deferred.makeUnsafe<void>(), gate: Deferred.makeUnsafe<void>() }
      gates.set(id, g)
    }
    return g
  }
  const state = {
    log,
    running: 0,
    max: 0,
    finalized: 0,
    builds: 0,
    started: (id: string) => Deferred.await(gatesOf(id).started),
    release: (id: string) => Deferred.succeed(gatesOf(id).gate, undefined)
  }
  const handlers: Record<string, AnyHandler> = {
    block: (id: string) =>
      Effect.gen(function* () {
        state.running++
        state.max = Math.max(state.max, state.running)
        yield* Deferred.succeed(gatesOf(id).started, undefined)
        yield* Deferred.await(gatesOf(id).gate)
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            state.running--
            state.finalized++
          })
        )
      ),
    push: (i: number) => {
      log.push(i)
      return log.length
    },
    pushEffect: (i: number) =>
      Effect.sync(() => {
        log.push(i)
        return log.length
      }),
    pushYield: (i: number) =>
      Effect.gen(function* () {
        const before = log.length
        yield* Effect.yieldNow
        // Only exclusion keeps the log's length what it was before the yield.
        assert.strictEqual(log.length, before)
        log.push(i)
        return log.length
      }),
    peek: () => log.length
  }
  const build = () =>
    Effect.sync(() => {
      state.builds++
      return handlers
    })
  return { state, build }
}

const range = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

/** Forks `effect` and runs it at once, up to its first suspension (queued, say). */
const start = <A, E>(effect: Effect.Effect<A, E>) => Effect.forkChild(effect, { startImmediately: true })

describe("ConcInstance", () => {
  describe("queued callers", () => {
    for (const method of ["push", "pushEffect", "pushYield"] as const) {
      it.effect(
        `20,000 callers of ${method} queued behind a blocked call all complete, in FIFO order`,
        () =>
          Effect.gen(function* () {
            const { state, build } = makeState()
            const instance = makeConc(build).instance("k")
            const blocker = yield* start(instance.call("block", "b"))
            yield* state.started("b")
            const n = 20_000
            const callers = yield* Effect.forEach(range(n), (i) => start(instance.call(method, i)))
            assert.strictEqual(instance.pending, n)
            assert.strictEqual(state.log.length, 0)
            yield* state.release("b")
            yield* Fiber.join(blocker)
            const results = yield* Effect.forEach(callers, Fiber.join)
            assert.strictEqual(state.log.length, n)
            assert.deepStrictEqual(state.log, range(n))
            assert.deepStrictEqual(
              results,
              range(n).map((i) => i + 1)
            )
            assert.strictEqual(instance.pending, 0)
            assert.strictEqual(instance.flags, 0)
            assert.strictEqual(yield* instance.call(method, n), n + 1)
            assert.strictEqual(state.builds, 1)
          }),
        60_000
      )
    }

    it.effect(
      "callers arriving while the instance is built wait for it, and it is built once",
      () =>
        Effect.gen(function* () {
          const { state, build } = makeState()
          const building = Deferred.makeUnsafe<void>()
          const instance = makeConc(() => Effect.andThen(Deferred.await(building), build())).instance("k")
          const callers = yield* Effect.forEach(range(1000), (i) => start(instance.call("push", i)))
          assert.strictEqual(state.builds, 0)
          assert.strictEqual(instance.pending, 999)
          yield* Deferred.succeed(building, undefined)
          assert.deepStrictEqual(
            yield* Effect.forEach(callers, Fiber.join),
            range(1000).map((i) => i + 1)
          )
          assert.deepStrictEqual(state.log, range(1000))
          assert.strictEqual(state.builds, 1)
        }),
      30_000
    )
  })

  describe("interruption", () => {
    it.effect("an interrupted queued caller leaves the queue; the others run in order and the flag is freed", () =>
      Effect.gen(function* () {
        const { state, build } = makeState()
        const instance = makeConc(build).instance("k")
        const blocker = yield* start(instance.call("block", "b"))
        yield* state.started("b")
        const [q0, q1, q2] = yield* Effect.forEach([0, 1, 2], (i) => start(instance.call("pushEffect", i)))
        yield* Fiber.interrupt(q1!)
        assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(q1!)))
        yield* state.release("b")
        yield* Fiber.join(blocker)
        assert.strictEqual(yield* Fiber.join(q0!), 1)
        assert.strictEqual(yield* Fiber.join(q2!), 2)
        assert.deepStrictEqual(state.log, [0, 2])
        assert.strictEqual(instance.flags, 0)
        // Later calls still run, exclusively.
        yield* Effect.forEach(range(10), (i) => instance.call("pushYield", 10 + i), { concurrency: "unbounded" })
        assert.strictEqual(state.log.length, 12)
        assert.strictEqual(instance.flags, 0)
      })
    )

    it.effect("interrupting the last queued caller does not leak the flag", () =>
      Effect.gen(function* () {
        const { state, build } = makeState()
        const instance = makeConc(build).instance("k")
        const blocker = yield* start(instance.call("block", "b"))
        yield* state.started("b")
        const queued = yield* start(instance.call("push", 0))
        yield* Fiber.interrupt(queued)
        yield* state.release("b")
        yield* Fiber.join(blocker)
        assert.strictEqual(instance.flags, 0)
        assert.strictEqual(yield* instance.call("pushEffect", 1), 1)
        assert.deepStrictEqual(state.log, [1])
      })
    )

    it.effect("interrupting many queued callers leaves exactly the others", () =>
      Effect.gen(function* () {
        const { state, build } = makeState()
        const instance = makeConc(build).instance("k")
        const blocker = yield* start(instance.call("block", "b"))
        yield* state.started("b")
        const callers = yield* Effect.forEach(range(3000), (i) => start(instance.call("pushEffect", i)))
        const odd = callers.filter((_, i) => i % 2 === 1)
        yield* Effect.forEach(odd, Fiber.interrupt)
        yield* state.release("b")
        yield* Fiber.join(blocker)
        yield* Effect.forEach(
          callers.filter((_, i) => i % 2 === 0),
          Fiber.join
        )
        assert.deepStrictEqual(
          state.log,
          range(3000).filter((i) => i % 2 === 0)
        )
        assert.strictEqual(instance.flags, 0)
        assert.strictEqual(instance.pending, 0)
      })
    )

    it.effect("interrupting the running call hands the instance to the next waiter", () =>
      Effect.gen(function* () {
        const { state, build } = makeState()
        const instance = makeConc(build).instance("k")
        const blocker = yield* start(instance.call("block", "never"))
        yield* state.started("never")
        const waiters = yield* Effect.forEach([0, 1], (i) => start(instance.call("pushEffect", i)))
        const second = yield* start(instance.call("block", "b2"))
        assert.strictEqual(state.running, 1)
        yield* Fiber.interrupt(blocker)
        assert.strictEqual(state.finalized, 1)
        assert.deepStrictEqual(yield* Effect.forEach(waiters, Fiber.join), [1, 2])
        // The next blocked call holds the instance now: one running, the new caller waits.
        yield* state.started("b2")
        assert.strictEqual(state.running, 1)
        const after = yield* start(instance.call("pushEffect", 2))
        assert.deepStrictEqual(state.log, [0, 1])
        yield* state.release("b2")
        yield* Fiber.join(second)
        assert.strictEqual(yield* Fiber.join(after), 3)
        assert.strictEqual(state.max, 1)
        assert.strictEqual(instance.flags, 0)
      })
    )

    it.effect("an interrupted caller's slot is free again: it no longer counts against the capacity", () =>
      Effect.gen(function* () {
        const { state, build } = makeState()
        const instance = makeConc(build, { capacity: 2, onFull: "fail" }).instance("k")
        const blocker = yield* start(instance.call("block", "b"))
        yield* state.started("b")
        const q0 = yield* start(instance.call("push", 0))
        const q1 = yield* start(instance.call("push", 1))
        yield* Fiber.interrupt(q1)
        // One call waits, the capacity is two: this one must be accepted.
        const q2 = yield* start(instance.call("push", 2))
        yield* state.release("b")
        yield* Fiber.join(blocker)
        assert.strictEqual(yield* Fiber.join(q0), 1)
        assert.strictEqual(yield* Fiber.join(q2), 2)
        assert.deepStrictEqual(state.log, [0, 2])
      })
    )
  })

  it.effect("pending counts the callers still waiting, not the interrupted ones", () =>
    Effect.gen(function* () {
      const { state, build } = makeState()
      const instance = makeConc(build).instance("k")
      const blocker = yield* start(instance.call("block", "b"))
      yield* state.started("b")
      const callers = yield* Effect.forEach(range(3), (i) => start(instance.call("push", i)))
      assert.strictEqual(instance.pending, 3)
      yield* Fiber.interrupt(callers[1]!)
      assert.strictEqual(instance.pending, 2)
      yield* state.release("b")
      yield* Fiber.join(blocker)
      yield* Fiber.join(callers[2]!)
      assert.strictEqual(instance.pending, 0)
    })
  )

  describe("reusing a call's Effect", () => {
    it.effect(
      "one call Effect run by two fibers at once, while the instance is busy, completes in both",
      () =>
        Effect.gen(function* () {
          const { state, build } = makeState()
          const instance = makeConc(build).instance("k")
          // Built by the first call, seen returning an Effect by the second: the method
          // takes the flag directly from now on.
          yield* instance.call("pushEffect", -2)
          yield* instance.call("pushEffect", -1)
          const blocker = yield* start(instance.call("block", "b"))
          yield* state.started("b")
          const push = instance.call("pushEffect", 0)
          const a = yield* start(push)
          const b = yield* start(push)
          yield* state.release("b")
          yield* Fiber.join(blocker)
          // A hang here is the failure: the instance lost one of its waiters.
          yield* Fiber.join(a)
          yield* Fiber.join(b)
          assert.deepStrictEqual(state.log, [-2, -1, 0, 0])
          assert.strictEqual(instance.flags, 0)
        }),
      5_000
    )

    it.effect("one call Effect run again, and interrupted while queued, does not release a flag it never took", () =>
      Effect.gen(function* () {
        const { state, build } = makeState()
        const instance = makeConc(build).instance("k")
        yield* instance.call("pushEffect", -2)
        yield* instance.call("pushEffect", -1)
        const push = instance.call("pushEffect", 0)
        // First run: the instance is idle, the call takes the flag and gives it back.
        yield* push
        const blocker = yield* start(instance.call("block", "b1"))
        yield* state.started("b1")
        // Second run of the same Effect: it queues behind the blocked call, then is interrupted.
        const queued = yield* start(push)
        yield* Fiber.interrupt(queued)
        // The blocked call still holds the instance: another call must wait.
        const other = yield* start(instance.call("block", "b2"))
        assert.strictEqual(state.running, 1)
        yield* state.release("b1")
        yield* state.release("b2")
        yield* Fiber.join(blocker)
        yield* Fiber.join(other)
        assert.strictEqual(state.max, 1)
        assert.deepStrictEqual(state.log, [-2, -1, 0])
      })
    )
  })

  describe("mailbox", () => {
    for (const capacity of [1, 3]) {
      it.effect(`capacity ${capacity} with onFull "fail": ${capacity} calls wait, the next is refused`, () =>
        Effect.gen(function* () {
          const { state, build } = makeState()
          const instance = makeConc(build, { capacity, onFull: "fail" }).instance("k")
          const blocker = yield* start(instance.call("block", "b"))
          yield* state.started("b")
          const waiting = yield* Effect.forEach(range(capacity), (i) => start(instance.call("pushEffect", i)))
          assert.strictEqual(instance.pending, capacity)
          const refused = yield* Effect.flip(instance.call("pushEffect", 99))
          assert.instanceOf(refused, MailboxFull)
          const full = refused as MailboxFull
          assert.deepStrictEqual([full.worker, full.key, full.capacity], ["W", "k", capacity])
          // A synchronous method is refused the same way.
          const refusedSync = yield* Effect.flip(instance.call("push", 99))
          assert.strictEqual((refusedSync as { _tag: string })._tag, "CorpsMailboxFull")
          yield* state.release("b")
          yield* Fiber.join(blocker)
          assert.deepStrictEqual(
            yield* Effect.forEach(waiting, Fiber.join),
            range(capacity).map((i) => i + 1)
          )
          assert.deepStrictEqual(state.log, range(capacity))
          // Room again once drained.
          assert.strictEqual(yield* instance.call("pushEffect", capacity), capacity + 1)
        })
      )
    }

    it.effect(`onFull "suspend" makes callers beyond the capacity wait, losing none`, () =>
      Effect.gen(function* () {
        const { state, build } = makeState()
        const instance = makeConc(build, { capacity: 2, onFull: "suspend" }).instance("k")
        const blocker = yield* start(instance.call("block", "b"))
        yield* state.started("b")
        const waiting = yield* Effect.forEach(range(10), (i) => start(instance.call("pushEffect", i)))
        yield* state.release("b")
        yield* Fiber.join(blocker)
        assert.deepStrictEqual(
          yield* Effect.forEach(waiting, Fiber.join),
          range(10).map((i) => i + 1)
        )
        assert.deepStrictEqual(state.log, range(10))
      })
    )
  })

  describe("concurrent methods", () => {
    it.effect("run while the instance is busy", () =>
      Effect.gen(function* () {
        const { state, build } = makeState()
        const instance = makeConc(build, { concurrent: ["peek"] }).instance("k")
        yield* instance.call("pushEffect", 0)
        const blocker = yield* start(instance.call("block", "b"))
        yield* state.started("b")
        const queued = yield* start(instance.call("pushEffect", 1))
        // Not queued: it answers while `block` holds the instance and `pushEffect` waits.
        assert.strictEqual(yield* instance.call("peek", undefined), 1)
        assert.strictEqual(instance.pending, 1)
        yield* state.release("b")
        yield* Fiber.join(blocker)
        assert.strictEqual(yield* Fiber.join(queued), 2)
        assert.strictEqual(yield* instance.call("peek", undefined), 2)
      })
    )

    it.effect("the first call of an unbuilt instance builds it, even for a concurrent method", () =>
      Effect.gen(function* () {
        const { state, build } = makeState()
        const instance = makeConc(build, { concurrent: ["peek"] }).instance("k")
        assert.strictEqual(yield* instance.call("peek", undefined), 0)
        assert.strictEqual(state.builds, 1)
        assert.strictEqual(yield* instance.call("peek", undefined), 0)
        assert.strictEqual(state.builds, 1)
      })
    )
  })

  describe("defects", () => {
    it.effect("a synchronous handler that throws fails the call with WorkerDefect and frees the instance", () =>
      Effect.gen(function* () {
        const instance = makeConc(() =>
          Effect.succeed({
            boom: () => {
              throw new Error("boom")
            },
            ok: () => "ok"
          })
        ).instance("k")
        const first = yield* Effect.flip(instance.call("boom", undefined))
        assert.strictEqual((first as { _tag: string })._tag, "WorkerDefect")
        const second = yield* Effect.flip(instance.call("boom", undefined))
        assert.include((second as Error).message, "W.boom died: boom")
        assert.strictEqual(yield* instance.call("ok", undefined), "ok")
        assert.strictEqual(instance.flags, 0)
      })
    )
  })

  describe("keyed instances", () => {
    it.effect(
      "100,000 keyed instances each hold their own state",
      () =>
        Effect.gen(function* () {
          let builds = 0
          const worker = makeConc((key) =>
            Effect.sync(() => {
              builds++
              let value = `unset ${key}`
              return {
                set: (v: string) => {
                  value = v
                },
                get: () => value
              }
            })
          )
          const n = 100_000
          for (let i = 0; i < n; i++) {
            yield* worker.instance(`k${i}`).call("set", `v${i * 7}`)
          }
          assert.strictEqual(worker.instances.size, n)
          assert.strictEqual(builds, n)
          for (const i of [0, 1, 2, 999, 12_345, 50_000, 77_777, n - 1]) {
            assert.strictEqual(yield* worker.instance(`k${i}`).call("get", undefined), `v${i * 7}`)
          }
          assert.strictEqual(yield* worker.instance("fresh").call("get", undefined), "unset fresh")
          assert.strictEqual(builds, n + 1)
        }),
      60_000
    )
  })

  describe("closing", () => {
    it.effect("runs each built instance's finalizers once; later calls fail with CorpsClosed", () =>
      Effect.gen(function* () {
        const closed: Array<string> = []
        const worker = makeConc((key, scope) =>
          Effect.as(
            Effect.addFinalizer(() =>
              Effect.sync(() => {
                closed.push(key)
              })
            ),
            { get: () => key }
          ).pipe(Scope.provide(scope))
        )
        const a = worker.instance("a")
        yield* a.call("get", undefined)
        yield* worker.instance("b").call("get", undefined)
        yield* worker.close(Exit.void)
        assert.deepStrictEqual(closed.sort(), ["a", "b"])
        const stale = yield* Effect.flip(a.call("get", undefined))
        assert.instanceOf(stale, CorpsClosed)
        assert.strictEqual((stale as CorpsClosed).corps, "corps-test")
        const fresh = yield* Effect.flip(worker.instance("c").call("get", undefined))
        assert.strictEqual((fresh as { _tag: string })._tag, "CorpsClosed")
        assert.deepStrictEqual(closed, ["a", "b"])
      })
    )
  })

  describe("building", () => {
    it.effect("an interrupted build closes its scope (its finalizers run) and the next call builds again", () =>
      Effect.gen(function* () {
        const closed: Array<string> = []
        const started = yield* Deferred.make<void>()
        let builds = 0
        const worker = makeConc((key, scope) =>
          Effect.gen(function* () {
            builds++
            yield* Effect.addFinalizer(() => Effect.sync(() => closed.push(key)))
            if (builds === 1) {
              yield* Deferred.succeed(started, undefined)
              yield* Effect.never
            }
            return { get: () => builds }
          }).pipe(Scope.provide(scope))
        )
        const first = yield* Effect.forkChild(worker.instance("k").call("get", undefined))
        yield* Deferred.await(started)
        yield* Fiber.interrupt(first)
        assert.deepStrictEqual(closed, ["k"])
        assert.strictEqual(yield* worker.instance("k").call("get", undefined), 2)
      })
    )
  })
})

/**
 * ExtCorps across real programs: this test process is program "A" (serves
 * Greeter, connects to Echo); program "B" is a child process started with
 * process.execPath (serves Echo, connects back to A's Greeter).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Layer, Queue, Stream } from "effect"
import { Corps } from "../../src/index.ts"
import { Echo, EchoChanged, Greeter } from "./fixtures/contracts.ts"

const programB = fileURLToPath(new URL("./fixtures/programB.ts", import.meta.url))
const secret = "s3cret"

/** Starts program B; resolves with its address once it prints `ready`. */
const startB = (env: Record<string, string>): Effect.Effect<{ child: ChildProcess; address: string }, string> =>
  Effect.callback((resume) => {
    const child = spawn(process.execPath, [programB], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const ready = /ready (\S+)\n/.exec(out)
      if (ready !== null) resume(Effect.succeed({ child, address: ready[1]! }))
      else if (/failed/.test(out)) resume(Effect.fail(out))
    })
    child.once("exit", (code) => resume(Effect.fail(`program B exited with ${code}: ${out}`)))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const killed = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGKILL")
  })

/** Program A's side: Greeter records every name it greets. */
const makeA = Effect.gen(function* () {
  const greeted = yield* Queue.unbounded<string>()
  const GreeterLive = Greeter.func({
    greet: ({ name }) => Effect.as(Queue.offer(greeted, name), `hi ${name}, from A`)
  })
  const served = yield* Layer.build(
    Corps.serve([Greeter], { listen: "127.0.0.1:0", secret }).pipe(Layer.provideMerge(Corps.layer([GreeterLive])))
  )
  const { address } = yield* Effect.provide(Corps.ServedAt, served)
  return { address, greeted, served }
})

/** Polls `check` until it is true or the deadline passes. */
const eventually = (check: Effect.Effect<boolean, unknown>, millis = 20_000): Effect.Effect<void, string> =>
  Effect.gen(function* () {
    const deadline = Date.now() + millis
    while (Date.now() < deadline) {
      if (yield* Effect.orElseSucceed(check, () => false)) return
      yield* Effect.sleep("50 millis")
    }
    return yield* Effect.fail("condition not met before the deadline")
  })

describe("ExtCorps: Corps.serve / Corps.connect across two programs", () => {
  it.live(
    "calls, errors, streams, interruption, handles both ways, callbacks, restart",
    () =>
      Effect.gen(function* () {
        const a = yield* makeA
        const b = yield* startB({ A_ADDRESS: a.address, GENERATION: "1" })
        const remote = yield* Layer.build(Corps.connect([Echo], { address: b.address, secret }))
        const both = Layer.succeedContext(remote)
        yield* Effect.gen(function* () {
          const echo = yield* Echo
          // A → B call.
          assert.strictEqual(yield* echo.hello({ name: "Ada" }), "hello Ada from B")
          // A typed error, with its tag and fields.
          const failed = yield* Effect.flip(echo.fail({ reason: "no" }))
          assert.strictEqual(failed._tag, "Oops")
          assert.strictEqual((failed as { reason: string }).reason, "no")
          // A stream, read to its end.
          const counted = yield* Stream.runCollect(echo.count({ n: 5 }))
          assert.deepStrictEqual(Array.from(counted), [1, 2, 3, 4, 5])
          // Interruption crosses: B's handler is interrupted.
          const slow = yield* Effect.exit(Effect.timeout(echo.instance("int").slow(), "200 millis"))
          assert.isTrue(Exit.isFailure(slow))
          yield* eventually(echo.instance("int").wasInterrupted())
          // A handle passed A → B and called by B (B calls A's Greeter through it).
          const greeter = Context.get(a.served, Greeter)
          assert.strictEqual(yield* echo.callHandle({ greeter, name: "via handle" }), "hi via handle, from A")
          // A handle passed B → A and called by A.
          const twin = yield* echo.twin({ key: "k2" })
          assert.strictEqual(yield* twin.whoAmI(), "Echo[k2] generation 1")
          // A call A → B whose handler calls back into A (B's own Corps.connect to A).
          assert.strictEqual(yield* echo.backToA({ name: "loop" }), "B got: hi loop, from A")
          const before = yield* Queue.takeAll(a.greeted)
          assert.deepStrictEqual(Array.from(before), ["via handle", "loop"])

          // A restart of B: calls in flight follow the delivery rules.
          const idem = yield* Effect.forkChild(echo.instance("r").idem())
          const block = yield* Effect.forkChild(Effect.exit(echo.instance("r").block()))
          // Both handlers are running in B (each told A so) before B is killed.
          const started = new Set<string>()
          while (started.size < 2) started.add(yield* Queue.take(a.greeted))
          yield* killed(b.child)
          const lost = yield* Fiber.join(block)
          assert.isTrue(Exit.isFailure(lost))
          const error = Exit.isFailure(lost) ? Cause.squash(lost.cause) : undefined
          assert.strictEqual((error as { _tag: string })._tag, "CallLost")
          assert.strictEqual((error as { mayHaveRun: boolean }).mayHaveRun, true)
          // B comes back on the same port: A reconnects, and the idempotent call is sent again.
          const port = b.address.split(":").pop()!
          const b2 = yield* startB({ A_ADDRESS: a.address, GENERATION: "2", PORT: port })
          assert.strictEqual(yield* Fiber.join(idem), "idem answered by generation 2")
          assert.strictEqual(yield* echo.whoAmI(), "Echo[default] generation 2")
          yield* killed(b2.child)
        }).pipe(Effect.provide(both))
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "refuses at connect time: a changed contract, a Worker not served, a wrong secret",
    () =>
      Effect.gen(function* () {
        const a = yield* makeA
        const b = yield* startB({ A_ADDRESS: a.address, MISMATCH: "1" })
        const mismatch = yield* Effect.flip(Layer.build(Corps.connect([Echo], { address: b.address, secret })))
        assert.strictEqual(mismatch._tag, "ContractMismatch")
        if (mismatch._tag === "ContractMismatch") {
          assert.strictEqual(mismatch.worker, "Echo")
          // `hello` differs; the other methods exist only on this side.
          assert.isTrue(mismatch.methods.includes("hello"))
          assert.isTrue(mismatch.methods.includes("fail"))
        }
        // The same contract as served connects.
        const same = yield* Layer.build(Corps.connect([EchoChanged], { address: b.address, secret }))
        assert.strictEqual(yield* Effect.provide(EchoChanged.hello({ name: 7 }), same), "number 7")
        const missing = yield* Effect.flip(Layer.build(Corps.connect([Greeter], { address: b.address, secret })))
        assert.strictEqual(missing._tag, "WorkerNotServed")
        if (missing._tag === "WorkerNotServed") {
          assert.deepStrictEqual(missing.workers, ["Greeter"])
          assert.deepStrictEqual(missing.served, ["Echo"])
        }
        const refused = yield* Effect.flip(
          Layer.build(Corps.connect([EchoChanged], { address: b.address, secret: "wrong" }))
        )
        assert.strictEqual(refused._tag, "ExtConnectError")
        if (refused._tag === "ExtConnectError") assert.strictEqual(refused.reason, "authentication")
        yield* killed(b.child)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "corps call against a live Corps: success, a typed error, bad JSON",
    () =>
      Effect.gen(function* () {
        const a = yield* makeA
        const b = yield* startB({ A_ADDRESS: a.address })
        const ok = yield* corpsCall([b.address, "Echo.hello", '{"name":"shell"}'])
        assert.strictEqual(ok.code, 0)
        assert.strictEqual(JSON.parse(ok.stdout), "hello shell from B")
        const counted = yield* corpsCall([b.address, "Echo.count", '{"n":3}', "--key", "x"])
        assert.deepStrictEqual(JSON.parse(counted.stdout), [1, 2, 3])
        const failed = yield* corpsCall([b.address, "Echo.fail", '{"reason":"bad"}'])
        assert.strictEqual(failed.code, 1)
        assert.deepStrictEqual(JSON.parse(failed.stderr.trim().split("\n").pop()!), { _tag: "Oops", reason: "bad" })
        const invalid = yield* corpsCall([b.address, "Echo.hello", '{"name":7}'])
        assert.strictEqual(invalid.code, 1)
        assert.match(invalid.stderr, /"_tag":"SerializationError"/)
        const notJson = yield* corpsCall([b.address, "Echo.hello", "{name:"])
        assert.strictEqual(notJson.code, 1)
        // The CLI's error presenter prints an ERROR header, then the error as one line (no stack).
        const lines = notJson.stderr
          .trim()
          .split("\n")
          .filter((line) => line.trim() !== "ERROR")
        assert.strictEqual(lines.length, 1)
        assert.match(lines[0]!.trim(), /^corps call: the payload is not JSON/)
        const unknown = yield* corpsCall([b.address, "Nope.hello", "{}"])
        assert.strictEqual(unknown.code, 1)
        assert.match(unknown.stderr, /"_tag":"UnknownWorker"/)
        // A secret file while CORPS_SECRET is set: refused before dialing, as by `corps host` and `corps runner`.
        const file = join(mkdtempSync(join(tmpdir(), "corps-call-")), "secret")
        writeFileSync(file, `${secret}\n`)
        const twice = yield* corpsCall([b.address, "Echo.hello", '{"name":"x"}', "--secret-file", file])
        assert.strictEqual(twice.code, 1)
        assert.match(twice.stderr, /the secret is given twice \(CORPS_SECRET and the file/)
        yield* killed(b.child)
      }).pipe(Effect.scoped),
    60_000
  )
})

describe("ExtCorps: errors of serve and connect in one program", () => {
  it.live(
    "an address in use is ExtServeError; nothing listening is ExtConnectError refused; no secret",
    () =>
      Effect.gen(function* () {
        const a = yield* makeA
        const taken = yield* Effect.flip(
          Layer.build(
            Corps.serve([Greeter], { listen: a.address, secret }).pipe(
              Layer.provide(Corps.layer([Greeter.func({ greet: () => Effect.succeed("") })]))
            )
          )
        )
        assert.strictEqual(taken._tag, "ExtServeError")
        assert.match(taken.reason, /EADDRINUSE/)
        const bad = yield* Effect.flip(
          Layer.build(
            Corps.serve([Greeter], { listen: "nowhere", secret }).pipe(
              Layer.provide(Corps.layer([Greeter.func({ greet: () => Effect.succeed("") })]))
            )
          )
        )
        assert.strictEqual(bad._tag, "ExtServeError")
        // Close a served Layer to get a port with nothing behind it.
        const port = yield* Effect.scoped(
          Effect.gen(function* () {
            const other = yield* Layer.build(
              Corps.serve([Greeter], { listen: "127.0.0.1:0", secret }).pipe(
                Layer.provide(Corps.layer([Greeter.func({ greet: () => Effect.succeed("") })]))
              )
            )
            return (yield* Effect.provide(Corps.ServedAt, other)).address
          })
        )
        const refused = yield* Effect.flip(
          Layer.build(Corps.connect([Greeter], { address: port, secret, connectTimeoutMillis: 500 }))
        )
        assert.strictEqual(refused._tag, "ExtConnectError")
        if (refused._tag === "ExtConnectError") assert.strictEqual(refused.reason, "refused")
        const noSecret = yield* Effect.flip(Layer.build(Corps.connect([Greeter], { address: a.address })))
        assert.strictEqual(noSecret._tag, "ExtConnectError")
        if (noSecret._tag === "ExtConnectError") assert.strictEqual(noSecret.reason, "authentication")
      }).pipe(Effect.scoped),
    30_000
  )
})

const cli = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))

/** Runs `corps call ARGS` in a child process. */
const corpsCall = (args: ReadonlyArray<string>) =>
  Effect.callback<{ code: number | null; stdout: string; stderr: string }>((resume) => {
    const child = spawn(process.execPath, [cli, "call", ...args], {
      env: { ...process.env, CORPS_SECRET: secret },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
    child.once("close", (code) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code, stdout, stderr }))
    })
  })

describe("ExtCorps: two child programs calling each other", () => {
  it.live(
    "examples/07_two_programs: A and B serve and connect to each other (call, callback, stream, typed error)",
    () =>
      Effect.gen(function* () {
        const run = fileURLToPath(new URL("../../examples/07_two_programs/run.ts", import.meta.url))
        const [aPort, bPort] = yield* Effect.promise(() => Promise.all([freePort(), freePort()]))
        const out = yield* Effect.callback<{ code: number | null; stdout: string }>((resume) => {
          const child = spawn(process.execPath, [run], {
            env: { ...process.env, A_PORT: String(aPort), B_PORT: String(bPort) },
            stdio: ["ignore", "pipe", "inherit"]
          })
          let stdout = ""
          child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
          const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
          child.once("close", (code) => {
            clearTimeout(timer)
            resume(Effect.succeed({ code, stdout }))
          })
        })
        assert.strictEqual(out.code, 0)
        assert.include(out.stdout, "7² = 49")
        assert.include(out.stdout, "5000² failed with TooBig (n=5000)")
        assert.include(out.stdout, "squares streamed from B: 1, 4, 9, 16, 25")
        assert.include(out.stdout, `A's ledger, written by B: ["B squared 7","B squared 12"]`)
      }),
    90_000
  )
})

/** A port nothing listens on now (the system's pick for port 0, released). */
const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })

/**
 * The host Env across real network boundaries: `corps host` daemons in
 * network namespaces of their own (made by the test: a veth pair and a /24
 * each), the caller — this process — in the root namespace. Where
 * namespaces are not available the same tests run on loopback ports, and
 * say so on one line.
 */
import { execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer } from "effect"
import { HostEnv } from "../../src/host/index.ts"
import { GREETING } from "../../src/host/protocol.ts"
import { Corps, type Placement } from "../../src/index.ts"
import * as Handshake from "../../src/internal/auth.ts"
import { CONTROL, writeFrame } from "../../src/node/transport/Socket.ts"
import { Forwarder, members, Tally, Where } from "../fixtures/hosts.ts"
import { type Daemon, killAll, makeNetwork, type Namespace, secret, startDaemon, until } from "./harness.ts"

const fixtures = new URL("../fixtures/hosts.ts", import.meta.url).href
const dir = mkdtempSync(join(tmpdir(), "corps-hosts-"))
process.env.CORPS_HOST_SECRET = secret

const network = makeNetwork(3)
if (network === undefined) console.log("ip netns is not available here: the multi-host tests run on loopback ports")
const namespaces: ReadonlyArray<Namespace | undefined> = network?.namespaces ?? [undefined, undefined, undefined]
/** A daemon in namespace `i` (on loopback without namespaces). */
const daemonIn = (i: number): Promise<Daemon> => {
  const ns = namespaces[i]
  return ns === undefined ? startDaemon() : startDaemon({ netns: ns.name, listen: `${ns.ip}:0` })
}
const [A, B] = await Promise.all([daemonIn(0), daemonIn(1)])

afterAll(() => {
  killAll()
  network?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

/** Runs `body` against a Corps of the host fixtures placed by `placement`. */
const run = <A, E>(
  placement: Placement.Placement,
  body: Effect.Effect<A, E, Corps.Provided<typeof members>>
): Effect.Effect<A, unknown> =>
  Effect.scoped(
    Effect.provide(body, Corps.layer(members, { placement, module: fixtures }).pipe(Layer.provide(HostEnv.layer)))
  )

/** The pid of the daemon that served a call to Where. */
const servedBy = Effect.gen(function* () {
  return yield* (yield* Where).daemon()
})

const patient = { maxRestarts: 1000, withinMillis: 60_000, backoff: { baseMillis: 50, capMillis: 500 } }

const isCallLost = (exit: Exit.Exit<unknown, unknown>): boolean =>
  Exit.isFailure(exit) && Cause.pretty(exit.cause).includes("CallLost")

describe("host Env across hosts", () => {
  it.live(
    "Funcs spread over both hosts, Conc keys live on one host each and stay exact",
    () =>
      run(
        { envs: { far: { kind: "host", hosts: [A!.address, B!.address], count: 4 } }, default: "far" },
        Effect.gen(function* () {
          const where = yield* Where
          const daemons = yield* Effect.forEach(Array.from({ length: 200 }), () => where.daemon(), {
            concurrency: "unbounded"
          })
          assert.deepStrictEqual(new Set(daemons), new Set([A!.process.pid, B!.process.pid]))
          const tally = yield* Tally
          const keys = Array.from({ length: 20 }, (_, i) => `k${i}`)
          yield* Effect.forEach(
            keys.flatMap((key) => Array.from({ length: 10 }, () => key)),
            (key) => tally.instance(key).add({ by: 1 }),
            { concurrency: "unbounded" }
          )
          for (const key of keys) assert.strictEqual(yield* tally.instance(key).add({ by: 0 }), 10)
          const homes = yield* Effect.forEach(keys, (key) => tally.instance(key).daemon())
          assert.deepStrictEqual(new Set(homes), new Set([A!.process.pid, B!.process.pid]))
        })
      ),
    120_000
  )

  it.live(
    "a handle to a Worker on host A, passed to a Worker on host B, calls the same instance (through the caller)",
    () =>
      run(
        {
          envs: { a: { kind: "host", hosts: [A!.address] }, b: { kind: "host", hosts: [B!.address] } },
          workers: { Tally: "a", Where: "a", Forwarder: "b" }
        },
        Effect.gen(function* () {
          const tally = (yield* Tally).instance("shared")
          const forwarder = yield* Forwarder
          assert.strictEqual(yield* tally.daemon(), A!.process.pid)
          assert.strictEqual(yield* forwarder.daemon(), B!.process.pid)
          assert.strictEqual(yield* forwarder.forward({ target: tally, by: 5 }), 5)
          assert.strictEqual(yield* forwarder.forward({ target: tally, by: 2 }), 7)
          assert.strictEqual(yield* tally.add({ by: 0 }), 7)
          const [a, b] = namespaces
          if (a !== undefined && b !== undefined) {
            // Host B has no route to host A at all: the call can only have gone through the caller.
            assert.throws(() =>
              execFileSync("ip", ["netns", "exec", b.name, "ip", "route", "get", a.ip], { stdio: "pipe" })
            )
          }
        })
      ),
    120_000
  )

  it.live(
    "code ships into an empty cache, is served from it the next time, and a missing package is named",
    () =>
      Effect.gen(function* () {
        const fresh = yield* Effect.promise(() => daemonIn(1))
        assert.deepStrictEqual(readdirSync(join(fresh.cacheDir, "objects")), [])
        const placement: Placement.Placement = {
          envs: { far: { kind: "host", hosts: [fresh.address] } },
          default: "far"
        }
        assert.strictEqual(yield* run(placement, servedBy), fresh.process.pid)
        const shipped = /program \w+ of \S+: (\d+) files, (\d+) shipped now, 0 from the cache/.exec(fresh.log())
        assert.isNotNull(shipped, fresh.log())
        assert.strictEqual(shipped![1], shipped![2])
        assert.strictEqual(readdirSync(join(fresh.cacheDir, "objects")).length, Number(shipped![1]))
        // The same program again: nothing travels.
        assert.strictEqual(yield* run(placement, servedBy), fresh.process.pid)
        assert.match(fresh.log(), new RegExp(`${shipped![1]} files, 0 shipped now, ${shipped![1]} from the cache`))
        const missing = yield* Effect.scoped(
          Effect.provide(
            servedBy,
            Corps.layer(members, {
              placement,
              module: new URL("../fixtures/hostsMissingPackage.ts", import.meta.url).href
            }).pipe(Layer.provide(HostEnv.layer))
          )
        ).pipe(Effect.flip)
        const host = (missing as { host?: { _tag: string; package?: string } }).host
        assert.strictEqual(host?._tag, "HostProtocolError")
        assert.strictEqual(host?.package, "corps-no-such-package")
      }),
    120_000
  )

  it.live(
    "one daemon serves two Corps at once; when a caller goes away (SIGKILL), its Env processes end",
    () =>
      Effect.gen(function* () {
        const placement: Placement.Placement = { envs: { far: { kind: "host", hosts: [A!.address] } }, default: "far" }
        const both = yield* Effect.all([run(placement, servedBy), run(placement, servedBy)], { concurrency: 2 })
        assert.deepStrictEqual(both, [A!.process.pid, A!.process.pid])
        const count = (pattern: RegExp) => (A!.log().match(pattern) ?? []).length
        const live = () => count(/ started \(pid/g) - count(/ ended \(/g)
        const caller = spawn(
          process.execPath,
          [fileURLToPath(new URL("./fixtures/caller.ts", import.meta.url)), A!.address],
          { stdio: ["ignore", "pipe", "inherit"] }
        )
        yield* Effect.promise(
          () =>
            new Promise<void>((resolve) =>
              caller.stdout!.on("data", (c: Buffer) => /ready/.test(c.toString()) && resolve())
            )
        )
        assert.isAtLeast(live(), 2)
        caller.kill("SIGKILL")
        // Its two Env processes see their links close and end; the daemon logs each end. No other caller is left.
        yield* Effect.promise(() => until(() => live() === 0, 30_000, "every Env process on the daemon to end"))
        assert.strictEqual(A!.process.exitCode, null)
      }),
    120_000
  )

  it.live(
    "a wrong secret is a typed HostConnectError; the daemon logs the refusal and keeps serving",
    () =>
      Effect.gen(function* () {
        const wrong = join(dir, "wrong-secret")
        writeFileSync(wrong, "not the secret\n")
        const refused = yield* run(
          { envs: { far: { kind: "host", hosts: [A!.address], secretFile: wrong } }, default: "far" },
          servedBy
        ).pipe(Effect.flip)
        assert.strictEqual((refused as { _tag: string })._tag, "EnvStartError")
        const host = (refused as { host?: { _tag: string; reason: string; host: string } }).host
        assert.strictEqual(host?._tag, "HostConnectError")
        assert.strictEqual(host?.reason, "authentication")
        assert.strictEqual(host?.host, A!.address)
        yield* Effect.promise(() => until(() => /refused .*wrong secret/.test(A!.log()), 10_000, "the refusal logged"))
        const served = yield* run({ envs: { far: { kind: "host", hosts: [A!.address] } }, default: "far" }, servedBy)
        assert.strictEqual(served, A!.process.pid)
      }),
    120_000
  )

  it.live(
    "nothing listening is refused, no route is unreachable: each its typed reason",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const hostOf = (address: string, connectTimeoutMillis?: number) =>
            run(
              {
                envs: {
                  far: {
                    kind: "host",
                    hosts: [address],
                    ...(connectTimeoutMillis === undefined ? {} : { connectTimeoutMillis })
                  }
                },
                default: "far"
              },
              servedBy
            ).pipe(
              Effect.flip,
              Effect.map((error) => (error as { host?: { _tag: string; reason: string } }).host)
            )
          const closedPort = `${A!.address.replace(/:\d+$/, "")}:1`
          assert.deepInclude(yield* hostOf(closedPort), { _tag: "HostConnectError", reason: "refused" })
          // An address on a namespace's link that no machine answers; on loopback, a port that accepts
          // connections and never says a word (a black hole past the connection).
          const nobody =
            namespaces[0] === undefined
              ? yield* Effect.acquireRelease(
                  Effect.promise(
                    () =>
                      new Promise<Net.Server>((resolve) => {
                        const silent = Net.createServer(() => {})
                        silent.listen(0, "127.0.0.1", () => resolve(silent))
                      })
                  ),
                  (silent) => Effect.sync(() => silent.close())
                ).pipe(Effect.map((silent) => `127.0.0.1:${(silent.address() as Net.AddressInfo).port}`))
              : `${namespaces[0].ip.replace(/\.2$/, ".3")}:7400`
          assert.deepInclude(yield* hostOf(nobody, 500), { _tag: "HostConnectError", reason: "unreachable" })
        })
      ),
    120_000
  )

  it.live(
    "garbage, oversized and malformed frames on the port never bring the daemon down",
    () =>
      Effect.gen(function* () {
        const [host, port] = [A!.address.replace(/:\d+$/, ""), Number(A!.address.split(":").pop())]
        /** Opens a connection, lets `act` write on it, and resolves when the daemon has closed it. */
        const closedBy = (act: (conn: Net.Socket) => Promise<void>) =>
          Effect.promise(
            () =>
              new Promise<void>((resolve, reject) => {
                const conn = Net.createConnection({ host, port })
                conn.on("error", () => {})
                conn.once("close", () => resolve())
                conn.once("connect", () => act(conn).catch(reject))
              })
          )
        // Bytes that are no handshake at all.
        yield* closedBy(async (conn) => {
          // Read what the daemon says, or its closing goes unnoticed.
          conn.resume()
          conn.write(randomBytes(64 * 1024))
        })
        // An authenticated peer announcing a 4 GiB frame.
        yield* closedBy(async (conn) => {
          conn.pause()
          await Handshake.dial(conn, secret, GREETING)
          const header = Buffer.alloc(5)
          header.writeUInt32BE(0xfffffff0, 0)
          header[4] = CONTROL
          conn.write(header)
          conn.resume()
        })
        // An authenticated peer sending a control frame that decodes to nothing.
        yield* closedBy(async (conn) => {
          conn.pause()
          await Handshake.dial(conn, secret, GREETING)
          writeFrame(conn, CONTROL, randomBytes(100))
          conn.resume()
        })
        assert.strictEqual(A!.process.exitCode, null)
        assert.match(A!.log(), /over the limit/)
        assert.match(A!.log(), /malformed control frame/)
        const served = yield* run({ envs: { far: { kind: "host", hosts: [A!.address] } }, default: "far" }, servedBy)
        assert.strictEqual(served, A!.process.pid)
      }),
    120_000
  )

  /**
   * Starts slow calls of both kinds on `[doomed, B]`, waits until later calls have made a round trip
   * on both links (so the slow ones are in flight), runs `strike`, and checks how every call ended.
   */
  const underLoad = (
    doomed: Daemon,
    strike: () => void,
    settings: Record<string, unknown>,
    after: Effect.Effect<void, unknown, Corps.Provided<typeof members>> = Effect.void
  ) =>
    run(
      {
        envs: {
          far: { kind: "host", hosts: [doomed.address, B!.address], count: 2, supervision: patient, ...settings }
        },
        default: "far"
      } as Placement.Placement,
      Effect.gen(function* () {
        const where = yield* Where
        const calls = Array.from({ length: 40 }, (_, i) =>
          i % 2 === 0 ? where.slow({ millis: 8_000 }) : where.slowOnce({ millis: 8_000 })
        )
        const fiber = yield* Effect.forkChild(Effect.forEach(calls, Effect.exit, { concurrency: "unbounded" }))
        // Probes sent after the slow calls, answered from both hosts: the slow calls have arrived.
        yield* Effect.promise(async () => {
          const seen = new Set<number>()
          await until(
            () => {
              Effect.runPromise(where.daemon()).then(
                (pid) => seen.add(pid),
                () => {}
              )
              return seen.has(doomed.process.pid!) && seen.has(B!.process.pid!)
            },
            30_000,
            "both hosts answering"
          )
        })
        strike()
        const exits = yield* Fiber.join(fiber)
        const idempotent = exits.filter((_, i) => i % 2 === 0)
        const once = exits.filter((_, i) => i % 2 === 1)
        // Idempotent calls lost with the doomed host were re-sent to B.
        for (const exit of idempotent) assert.deepStrictEqual(exit, Exit.succeed(B!.process.pid!))
        // The others ended: answered by B, or CallLost if they were on the doomed host.
        for (const exit of once) assert.isTrue(Exit.isSuccess(exit) || isCallLost(exit), String(exit))
        assert.isAbove(once.filter(isCallLost).length, 0)
        yield* after
      })
    )

  it.live(
    "a daemon SIGKILLed under load: its calls end by their rules, none hangs",
    () =>
      Effect.gen(function* () {
        const doomed = yield* Effect.promise(() => daemonIn(0))
        yield* underLoad(doomed, () => doomed.process.kill("SIGKILL"), {})
      }),
    180_000
  )

  it.live(
    "a link cut with ip link set down: calls end within the heartbeat timeout, and the link comes back",
    () =>
      Effect.gen(function* () {
        const ns = namespaces[2]
        const far = yield* Effect.promise(() => daemonIn(2))
        // Without namespaces, stopping the daemon and its Env processes (SIGSTOP) freezes their side of
        // the links like a cut cable: nothing is closed, nothing answers.
        const frozen: Array<number> = []
        const signal = (sig: NodeJS.Signals) => {
          for (const pid of frozen) {
            try {
              process.kill(pid, sig)
            } catch {}
          }
        }
        const cut = () => {
          if (ns !== undefined) return network!.cut(ns)
          const children = execFileSync("pgrep", ["-P", String(far.process.pid)], { encoding: "utf8" })
          frozen.push(
            far.process.pid!,
            ...children
              .split("\n")
              .filter((line) => line !== "")
              .map(Number)
          )
          signal("SIGSTOP")
        }
        const restore = () => (ns === undefined ? signal("SIGCONT") : network!.restore(ns))
        const started = Date.now()
        yield* underLoad(
          far,
          cut,
          { heartbeatMillis: 100, heartbeatTimeoutMillis: 1_000, connectTimeoutMillis: 5_000 },
          Effect.gen(function* () {
            console.log(`link cut: every call ended ${Date.now() - started} ms after the load started`)
            restore()
            const where = yield* Where
            // The pool dials the host again (with backoff) until it answers.
            yield* Effect.promise(async () => {
              let back = false
              await until(
                () => {
                  Effect.runPromise(where.daemon()).then(
                    (pid) => {
                      back ||= pid === far.process.pid
                    },
                    () => {}
                  )
                  return back
                },
                60_000,
                "the cut host serving again"
              )
            })
          })
        )
      }),
    180_000
  )
})

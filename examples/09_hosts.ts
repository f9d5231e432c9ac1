/**
 * 09 — Workers on other hosts, with no database and nothing installed but
 * Node and effect-corps.
 *
 * Starts two `corps host` daemons on loopback, inside this process (in a
 * real deployment each runs on its own machine: `corps host --listen
 * 0.0.0.0:7400`; the daemon is only the door: each Env is a process of its
 * own, and calls go straight to it), then places
 * a Func and a keyed Conc on a `host` Env spread over both. The caller's
 * code is shipped to each daemon (this file and what it imports
 * relatively), cached there by hash, and imported by each Env's process.
 *
 * - 1,000 calls of the Func `Hasher.hash` spread over the four processes;
 * - three keyed `Account` instances, each on the process its key hashes to,
 *   receive 100 deposits each, from concurrent callers, and stay exact;
 * - a handle to an account is passed to a Hasher, which deposits into it
 *   (the call goes back through the caller to the account's host).
 *
 * Prints (pids and times vary):
 *
 *   daemons: 127.0.0.1:<port>, 127.0.0.1:<port>
 *   1000 hashes from 4 processes under 2 daemons in <n> ms
 *   alice: 100 (expected 100), in process <pid>
 *   bob: 200 (expected 200), in process <pid>
 *   carol: 300 (expected 300), in process <pid>
 *   a Hasher (process <pid>) deposited 5 into carol: 305
 *
 * Run: npm run example:hosts
 */
import { createHash } from "node:crypto"
import { Effect, Layer, References, Schema } from "effect"
import { HostDaemon, HostEnv } from "../src/host/index.ts"
import { Corps, Worker } from "../src/index.ts"

/** A keyed account: one instance per name, living in one process. */
export class Account extends Worker.Service<Account>()("Account", {
  deposit: { payload: { amount: Schema.Number }, success: Schema.Number },
  /** The pid of the process holding this account. */
  pid: { success: Schema.Number }
}) {}

export const AccountLive = Account.conc(
  Effect.sync(() => {
    let balance = 0
    return {
      deposit: ({ amount }) => (balance += amount),
      pid: () => process.pid
    }
  })
)

/** A stateless Worker, replicated on every process of its Env. */
export class Hasher extends Worker.Service<Hasher>()("Hasher", {
  hash: { payload: { text: Schema.String }, success: Schema.Struct({ digest: Schema.String, pid: Schema.Number }) },
  /** Deposits into the account behind `into`, a handle the caller passes. */
  pay: { payload: { into: Account.Handle, amount: Schema.Number }, success: Schema.Number },
  pid: { success: Schema.Number }
}) {}

export const HasherLive = Hasher.func({
  hash: ({ text }) => ({ digest: createHash("sha256").update(text).digest("hex"), pid: process.pid }),
  pay: ({ into, amount }) => Effect.orDie(into.deposit({ amount })),
  pid: () => process.pid
})

const main = (addresses: readonly [string, string]) =>
  Effect.gen(function* () {
    const hasher = yield* Hasher
    const accounts = yield* Account
    const start = performance.now()
    const hashes = yield* Effect.forEach(
      Array.from({ length: 1000 }, (_, i) => `message ${i}`),
      (text) => hasher.hash({ text }),
      { concurrency: 64 }
    )
    const pids = new Set(hashes.map((h) => h.pid))
    console.log(`daemons: ${addresses.join(", ")}`)
    console.log(
      `${hashes.length} hashes from ${pids.size} processes under 2 daemons in ${Math.round(performance.now() - start)} ms`
    )
    const names = ["alice", "bob", "carol"] as const
    yield* Effect.forEach(
      names.flatMap((name, i) => Array.from({ length: 100 }, () => ({ name, amount: i + 1 }))),
      ({ name, amount }) => accounts.instance(name).deposit({ amount }),
      { concurrency: "unbounded", discard: true }
    )
    for (const [i, name] of names.entries()) {
      const account = accounts.instance(name)
      const balance = yield* account.deposit({ amount: 0 })
      console.log(`${name}: ${balance} (expected ${(i + 1) * 100}), in process ${yield* account.pid()}`)
    }
    const carol = accounts.instance("carol")
    const after = yield* hasher.pay({ into: carol, amount: 5 })
    console.log(`a Hasher (process ${yield* hasher.pid()}) deposited 5 into carol: ${after}`)
  })

if (import.meta.main) {
  // The daemons and the caller share this secret (in production: CORPS_HOST_SECRET or a secret file on each side).
  const secret = "example-07-secret"
  process.env.CORPS_HOST_SECRET = secret
  const program = Effect.gen(function* () {
    const cacheDir = `${process.env.TMPDIR ?? "/tmp"}/corps-example-07`
    const one = yield* HostDaemon.start({ host: "127.0.0.1", port: 0, secret, cacheDir: `${cacheDir}/a` })
    const two = yield* HostDaemon.start({ host: "127.0.0.1", port: 0, secret, cacheDir: `${cacheDir}/b` })
    const addresses = [`${one.host}:${one.port}`, `${two.host}:${two.port}`] as const
    const App = Corps.layer([HasherLive, AccountLive], {
      module: import.meta.url,
      placement: { envs: { far: { kind: "host", hosts: [...addresses], count: 4 } }, default: "far" }
    }).pipe(Layer.provide(HostEnv.layer))
    yield* Effect.provide(main(addresses), App)
  })
  // The daemons log each Env they start and stop: quiet here, so that the example's own lines stand out.
  Effect.runPromise(program.pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Warn"))).then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

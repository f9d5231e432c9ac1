/**
 * The seed's integration shape with keyed instances (issue 11 item 7), over
 * threads and processes, and the rule for a nested Corps' private members in
 * a multi-Env placement: they live with their Corps, in the Env of its slot 0.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Corps, type Placement } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"
import { Client, ClientLive, Desk, DeskLive, PRIVATE_SERVERS, ServerLive } from "./fixtures/seed.ts"

const fixtures = new URL("./fixtures/seed.ts", import.meta.url).href
const ENVS = 3
const CLIENTS = 9
const GLOBALS = 9
const ROUNDS = 50

for (const kind of ["thread", "process"] as const) {
  describe(`seed shape (${kind})`, () => {
    const placement = { envs: { pool: { kind, count: ENVS } }, default: "pool" } satisfies Placement.Placement

    it.live(
      `${CLIENTS} clients with ${PRIVATE_SERVERS} private servers each and ${GLOBALS} global servers, ${ROUNDS} concurrent rounds: exact counts, no errors`,
      () =>
        Effect.gen(function* () {
          const client = yield* Client
          const clients = Array.from({ length: CLIENTS }, (_, i) => client.instance(`client-${i}`))
          const tallies = yield* Effect.forEach(clients, (c) => c.run({ rounds: ROUNDS, globals: GLOBALS }), {
            concurrency: "unbounded"
          })
          for (const tally of tallies) {
            assert.deepStrictEqual(tally, {
              globals: { requests: ROUNDS * GLOBALS, errors: 0, wrong: 0 },
              privates: { requests: ROUNDS * PRIVATE_SERVERS, errors: 0, wrong: 0 }
            })
          }
          // Each private server served its own client exactly ROUNDS times.
          for (const c of clients) {
            assert.deepStrictEqual(yield* c.privateServed(), Array(PRIVATE_SERVERS).fill(ROUNDS))
          }
        }).pipe(
          Effect.provide(
            Corps.layer([ClientLive, ServerLive], { module: fixtures, placement }).pipe(Layer.provide(NodeEnv.layer))
          ),
          Effect.scoped
        ),
      120_000
    )

    it.live(
      "a nested Corps with private members is one unit: every key and its private Clerk in one Env",
      () =>
        Effect.gen(function* () {
          const desk = yield* Desk
          const places = yield* Effect.forEach(
            Array.from({ length: 12 }, (_, i) => desk.instance(`desk-${i}`)),
            (d) => Effect.all([d.where(), d.clerkWhere()])
          )
          const distinct = new Set(places.flatMap(([a, b]) => [`${a.pid}/${a.thread}`, `${b.pid}/${b.thread}`]))
          assert.strictEqual(distinct.size, 1)
          assert.notStrictEqual([...distinct][0], `${process.pid}/0`)
        }).pipe(
          Effect.provide(Corps.layer([DeskLive], { module: fixtures, placement }).pipe(Layer.provide(NodeEnv.layer))),
          Effect.scoped
        ),
      60_000
    )
  })
}

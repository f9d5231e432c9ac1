/**
 * The seed's integration shape with `create` (issue 11, "Tests"): over 3
 * thread or process Envs, 3 global servers per Env created automatically by
 * the program, 3 clients per Env created with the globals' handles as init,
 * each creating 3 private servers per Env in its own builder; 50 concurrent
 * rounds in which every client calls its 9 globals and its 9 privates.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Corps, type Placement } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"
import { PRIVATE_PER_ENV, SeedClient, SeedClientLive, SeedServer, SeedServerLive } from "./fixtures/created.ts"

const fixtures = new URL("./fixtures/created.ts", import.meta.url).href
const ENVS = 3
const PER_ENV = 3
const ROUNDS = 50
const GLOBALS = ENVS * PER_ENV
const PRIVATES = ENVS * PRIVATE_PER_ENV

for (const kind of ["thread", "process"] as const) {
  describe(`seed shape with create (${kind})`, () => {
    const placement = { envs: { pool: { kind, count: ENVS } }, default: "pool" } satisfies Placement.Placement

    it.live(
      `${PER_ENV} clients per Env (created perEnv), each creating ${PRIVATE_PER_ENV} private servers per Env, ${GLOBALS} globals, ${ROUNDS} rounds: ${ROUNDS * GLOBALS} requests each, exact`,
      () =>
        Effect.gen(function* () {
          // Automatic placement spreads them: 3 per Env. Each has its own id, so each is its own create.
          const numbered = yield* Effect.forEach(
            Array.from({ length: GLOBALS }, (_, i) => i),
            (i) => SeedServer.create({ id: 100 + i })
          )
          const globalPlaces = yield* Effect.forEach(numbered, (s) => s.where())
          const perPlace = new Map<string, number>()
          for (const p of globalPlaces)
            perPlace.set(`${p.pid}/${p.thread}`, (perPlace.get(`${p.pid}/${p.thread}`) ?? 0) + 1)
          assert.deepStrictEqual([...perPlace.values()], [PER_ENV, PER_ENV, PER_ENV])
          const clients = (yield* Effect.forEach(
            Array.from({ length: PER_ENV }, (_, i) => i),
            (i) =>
              SeedClient.create(
                {
                  name: `client-${i}`,
                  firstPrivateId: 1000 + i * 10,
                  globals: numbered.map((server, j) => ({ id: 100 + j, server }))
                },
                { where: "perEnv" }
              )
          )).flat()
          assert.strictEqual(clients.length, ENVS * PER_ENV)
          const clientPlaces = yield* Effect.forEach(clients, (c) => c.where())
          assert.strictEqual(new Set(clientPlaces.map((p) => `${p.pid}/${p.thread}`)).size, ENVS)
          const tallies = yield* Effect.forEach(clients, (c) => c.run({ rounds: ROUNDS }), { concurrency: "unbounded" })
          for (const tally of tallies) {
            assert.deepStrictEqual(tally, {
              globals: { requests: ROUNDS * GLOBALS, errors: 0, wrong: 0 },
              privates: { requests: ROUNDS * PRIVATES, errors: 0, wrong: 0 }
            })
          }
          for (const c of clients) {
            // Each private server served its client exactly ROUNDS times, and they sit in every Env.
            assert.deepStrictEqual(yield* c.privateServed(), Array(PRIVATES).fill(ROUNDS))
            const places = yield* c.privatePlaces()
            assert.strictEqual(new Set(places.map((p) => `${p.pid}/${p.thread}`)).size, ENVS)
          }
        }).pipe(
          Effect.provide(
            Corps.layer([SeedClientLive, SeedServerLive], { module: fixtures, placement }).pipe(
              Layer.provide(NodeEnv.layer)
            )
          ),
          Effect.scoped
        ),
      120_000
    )
  })
}

/**
 * The behavioural suite with every Worker in worker threads (the Gate stays
 * in the test's runtime, so every test also crosses back to the caller).
 */
import { behaviourSuite } from "./suite/behaviour.ts"

behaviourSuite("thread", { envs: { pool: { kind: "thread", count: 2 } }, default: "pool" })

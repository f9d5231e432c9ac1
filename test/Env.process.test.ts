/**
 * The behavioural suite with every Worker in child processes.
 */
import { behaviourSuite } from "./suite/behaviour.ts"

behaviourSuite("process", { envs: { pool: { kind: "process", count: 2 } }, default: "pool" })

/**
 * The behavioural suite with every Worker in a `cluster` Env (embedded,
 * in-memory storage: entities in this process, messages serialized).
 */
import { ClusterEnv } from "../../src/cluster/index.ts"
import { behaviourSuite } from "../suite/behaviour.ts"

behaviourSuite(
  "cluster (local storage)",
  { envs: { c: { kind: "cluster", storage: "local" } }, default: "c" },
  ClusterEnv.layer()
)

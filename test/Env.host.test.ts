/**
 * The behavioural suite over a host Env: two `corps host` daemons on
 * loopback, two processes on each.
 */
import { afterAll } from "@effect/vitest"
import { HostEnv } from "../src/host/index.ts"
import { killAll, secret, startDaemon } from "./host/harness.ts"
import { behaviourSuite } from "./suite/behaviour.ts"

process.env.CORPS_HOST_SECRET = secret
const daemons = await Promise.all([startDaemon(), startDaemon()])
afterAll(killAll)

behaviourSuite(
  "host (two loopback daemons)",
  { envs: { far: { kind: "host", hosts: [daemons[0]!.address, daemons[1]!.address], count: 2 } }, default: "far" },
  HostEnv.layer
)

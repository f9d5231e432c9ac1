/**
 * The behavioural suite in a thread Env and in a process Env that scale between 1 and 4
 * (a fast policy, so that the suite's own load resizes it while it runs):
 * Conc keys are placed by the caller's directory, Funcs spread over the
 * threads in service.
 */
import { behaviourSuite } from "./suite/behaviour.ts"

behaviourSuite("thread, scaling 1..4", {
  envs: {
    pool: {
      kind: "thread",
      count: { min: 1, max: 4 },
      scaling: { sampleMillis: 20, upAfterMillis: 20, downAfterMillis: 200, inFlightPerEnv: 2 }
    }
  },
  default: "pool"
})

behaviourSuite("process, scaling 1..4", {
  envs: {
    pool: {
      kind: "process",
      count: { min: 1, max: 4 },
      scaling: { sampleMillis: 20, upAfterMillis: 20, downAfterMillis: 200, inFlightPerEnv: 2 }
    }
  },
  default: "pool"
})

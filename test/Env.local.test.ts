/**
 * The behavioural suite on the FastPath, plain and with the serialization
 * check (every value round-tripped through its Schema).
 */
import { behaviourSuite } from "./suite/behaviour.ts"

behaviourSuite("local", {})
behaviourSuite("local, serialization checked", {
  envs: { checked: { kind: "local", checkSerialization: true } },
  default: "checked"
})

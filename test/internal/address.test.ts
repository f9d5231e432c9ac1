/**
 * `host:port` parsing shared by the dialers, the listeners and the `host`
 * Env's schema (src/internal/address.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import { parseAddress, parseListenAddress } from "../../src/internal/address.ts"

describe("address", () => {
  it("splits host:port, unbracketing an IPv6 literal", () => {
    assert.deepStrictEqual(parseAddress("10.0.0.2:7400"), { host: "10.0.0.2", port: 7400 })
    assert.deepStrictEqual(parseAddress("[::1]:7400"), { host: "::1", port: 7400 })
    assert.deepStrictEqual(parseListenAddress("[::]:0"), { host: "::", port: 0 })
  })

  it("dials ports 1 to 65535 only; listens on 0 (any free port) to 65535", () => {
    assert.isUndefined(parseAddress("localhost:0"))
    assert.deepStrictEqual(parseListenAddress("localhost:0"), { host: "localhost", port: 0 })
    assert.deepStrictEqual(parseAddress("localhost:65535"), { host: "localhost", port: 65535 })
    for (const bad of ["localhost", "localhost:65536", ":7400", "host:123456", "host:port"]) {
      assert.isUndefined(parseAddress(bad), bad)
      assert.isUndefined(parseListenAddress(bad), bad)
    }
  })
})

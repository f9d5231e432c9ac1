/**
 * The directory of a scaling Env (src/node/directory.ts): a created
 * instance's key that names a never-drained slot is placed there; any other
 * key (or a slot the Env may drain) is placed by the Env's policy.
 */
import { assert, describe, it } from "@effect/vitest"
import { Directory } from "../../src/node/directory.ts"

const createdKey = (slot: number | "", uuid: string) => `$c:${slot}:${uuid}:{"label":"x"}`

describe("node/Directory", () => {
  it("honours the slot of a created key when the Env never drains it", () => {
    const asked: Array<string> = []
    // The policy would put every new key on slot 3 (a slot above min = 3).
    const directory = new Directory(
      "Resource",
      () => {
        asked.push("place")
        return 3
      },
      (slot) => slot < 3
    )
    assert.strictEqual(directory.entry(createdKey(2, "a")).slot, 2)
    assert.strictEqual(directory.entry(createdKey(0, "b")).slot, 0)
    assert.deepStrictEqual(asked, [])
    // A slot the Env may drain, a created key with no slot, a plain key: placed by the policy.
    assert.strictEqual(directory.entry(createdKey(3, "c")).slot, 3)
    assert.strictEqual(directory.entry(createdKey("", "d")).slot, 3)
    assert.strictEqual(directory.entry("2").slot, 3)
    assert.strictEqual(asked.length, 3)
    assert.deepStrictEqual(directory.keysOn(2), [createdKey(2, "a")])
    // Placed once: asking again finds the same entry.
    assert.strictEqual(directory.entry(createdKey(2, "a")), directory.entry(createdKey(2, "a")))
  })

  it("without a rule for slots, every key is placed by the policy", () => {
    const directory = new Directory("Resource", () => 1)
    assert.strictEqual(directory.entry(createdKey(0, "a")).slot, 1)
  })
})

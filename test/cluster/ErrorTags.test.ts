/**
 * effect-corps' error tags never equal those of the effect/cluster errors a
 * caller of the cluster Env may see beside them, so `Effect.catchTag` cannot
 * confuse the two.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { ClusterError, EntityAddress, EntityId, EntityType, ShardId } from "effect/cluster"
import { CallError, MailboxFull } from "../../src/CorpsError.ts"

/** The tags of a Schema union of tagged classes. */
const tagsOf = (union: unknown): Array<string> =>
  ((union as { members: ReadonlyArray<{ fields: { _tag: { ast: { literal: string } } } }> }).members ?? []).map(
    (member) => member.fields._tag.ast.literal
  )

describe("error tags", () => {
  it("no CallError tag is an effect/cluster error tag", () => {
    const ours = tagsOf(CallError)
    assert.include(ours, "CorpsMailboxFull")
    assert.isAtLeast(ours.length, 7)
    const clusterTags = Object.values(ClusterError)
      .map((value) => (value as { fields?: { _tag?: { ast?: { literal?: unknown } } } }).fields?._tag?.ast?.literal)
      .filter((tag): tag is string => typeof tag === "string")
    assert.include(clusterTags, "MailboxFull")
    for (const tag of ours) assert.notInclude(clusterTags, tag)
  })

  it.effect("catchTag on effect-corps' MailboxFull leaves effect/cluster's MailboxFull alone", () =>
    Effect.gen(function* () {
      const address = EntityAddress.make({
        shardId: ShardId.make("default", 1),
        entityType: EntityType.make("Account"),
        entityId: EntityId.make("a")
      })
      const theirs = new ClusterError.MailboxFull({ address })
      const exit = yield* Effect.exit(
        Effect.fail(theirs as ClusterError.MailboxFull | MailboxFull).pipe(
          Effect.catchTag("CorpsMailboxFull", () => Effect.succeed("caught"))
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      const ours = yield* Effect.fail(new MailboxFull({ worker: "Account", key: "a", capacity: 1 })).pipe(
        Effect.catchTag("CorpsMailboxFull", (e) => Effect.succeed(e.capacity))
      )
      assert.strictEqual(ours, 1)
    })
  )
})

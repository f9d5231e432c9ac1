#!/usr/bin/env node
/**
 * The `corps` executable (`bin` in package.json).
 *
 * @since 0.2.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { run } from "./Root.ts"

NodeRuntime.runMain(run.pipe(Effect.provide(NodeServices.layer)))

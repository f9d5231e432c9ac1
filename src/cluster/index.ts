/**
 * `effect-corps/cluster`: Workers across hosts, on `effect/cluster`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Auth from "./Auth.ts"
/** @since 0.1.0 */
export * as Cluster from "./Cluster.ts"
/** @since 0.1.0 */
export * as ClusterEnv from "./ClusterEnv.ts"
/** @since 0.1.0 */
export * as Entities from "./Entities.ts"
/** @since 0.1.0 */
export * as Module from "./Module.ts"
/** @since 0.1.0 */
export * as Runner from "./runner.ts"

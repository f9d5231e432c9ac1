/**
 * `effect-corps/cluster`: Workers across hosts, on `effect/cluster`.
 *
 * - `ClusterEnv.layer()` provides the `cluster` Env kind to a Corps.
 * - `Cluster` holds the settings and the layers that make a process a client
 *   (`layerSql`) or an embedded single-process cluster (`layerLocal`).
 * - `DeliveryId` de-duplicates redelivered persisted messages.
 * - `RunnerLoad` reads each runner's load and recommends a runner count.
 *
 * Delivery options (`persisted`, `volatile`, …) are given on the
 * implementation: `Worker.conc(build, { cluster: { … } })`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Cluster from "./Cluster.ts"
/** @since 0.1.0 */
export * as ClusterEnv from "./ClusterEnv.ts"
/** @since 0.1.0 */
export { DeliveryId } from "./DeliveryId.ts"
/** @since 0.3.0 */
export * as RunnerLoad from "./RunnerLoad.ts"

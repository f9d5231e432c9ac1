/**
 * effect-corps: typed Workers on Effect 4 — parallel and distributed
 * applications without threads, processes, sockets or serialization in sight.
 *
 * @since 0.1.0
 */

/**
 * Corps: Layers that compose Workers; a Corps is itself a Worker.
 *
 * @since 0.1.0
 */
export * as Corps from "./Corps.ts"
/**
 * Every error effect-corps raises.
 *
 * @since 0.1.0
 */
export * as CorpsError from "./CorpsError.ts"

/**
 * The typed events a running Corps reports about itself (`Corps.events`).
 *
 * @since 0.2.0
 */
export * as CorpsEvent from "./CorpsEvent.ts"

/**
 * The live dashboard: an HTTP server with the page, JSON, Server-Sent Events
 * and Prometheus text of the Corps built below it.
 *
 * @since 0.3.0
 */
export * as Dashboard from "./Dashboard.ts"
/**
 * Envs: where Workers live.
 *
 * @since 0.1.0
 */
export * as Env from "./Env.ts"
/**
 * The HTTP gateway: Workers served over HTTP from their contracts, with an
 * OpenAPI document and a browsable page.
 *
 * @since 0.4.0
 */
export * as Gateway from "./Gateway.ts"
export * as Monitoring from "./Monitoring.ts"
/**
 * Placements: configuration mapping Workers to Envs.
 *
 * @since 0.1.0
 */
export * as Placement from "./Placement.ts"
/**
 * Autoscaling: the scaling policy and the pure decision that sizes Envs and runners.
 *
 * @since 0.3.0
 */
export * as Scaling from "./Scaling.ts"
/**
 * Persisted state for Concs: stores (memory, PostgreSQL) and the state Ref.
 *
 * @since 0.2.0
 */
export * as State from "./State.ts"
/**
 * Supervision policies: restart backoff, intensity limits, outcomes.
 *
 * @since 0.2.0
 */
export * as Supervision from "./Supervision.ts"
/**
 * Workers: contracts, Conc and Func implementations, handles.
 *
 * @since 0.1.0
 */
export * as Worker from "./Worker.ts"

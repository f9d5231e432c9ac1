/**
 * Hosts without a database: the `host` Env kind and the `corps host` daemon
 * that serves it (docs/hosts.md).
 *
 * @since 0.4.0
 */

/**
 * The `corps host` daemon, to embed in a program (the CLI runs it too).
 *
 * @since 0.4.0
 */
export * as HostDaemon from "./Daemon.ts"
/**
 * The `host` Env kind's provider.
 *
 * @since 0.4.0
 */
export * as HostEnv from "./HostEnv.ts"

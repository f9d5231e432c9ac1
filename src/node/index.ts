/**
 * Node implementations of Envs: worker threads and child processes.
 *
 * @since 0.1.0
 */

/**
 * Thread and process Envs.
 *
 * @since 0.1.0
 */
export * as NodeEnv from "./NodeEnv.ts"

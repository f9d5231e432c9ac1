/**
 * Where the Env's process of a daemon imports its module from. Until the
 * code-shipping exchange lands, the module URL the caller sent is imported
 * as is, which needs the program at the same path on the host (true of
 * loopback daemons and of hosts that share a file system).
 */

/** The URL the Env's process imports for a caller's module URL. */
export const resolveModule = (module: string): string => module

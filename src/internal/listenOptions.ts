/**
 * The `port` and `host` options the dashboard and the gateway share: their
 * default and their check. Kept apart from `httpServer.ts` so that checking
 * options does not load the HTTP platform.
 */

/** The interface served when no host is given: this machine only. */
export const DEFAULT_HOST = "127.0.0.1"

/** What is wrong with `port` and `host`, or undefined when both are valid. */
export const checkListen = (port: number, host: string | undefined): string | undefined => {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    return `port must be an integer from 0 to 65535 (got ${port})`
  }
  if (host !== undefined && host.trim() === "") return "host must not be empty"
  return undefined
}

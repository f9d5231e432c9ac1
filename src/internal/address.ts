/**
 * `host:port` addresses as every effect-corps socket writes them (host
 * daemons, ExtCorps servers, the `host` Env's schema): one parser, so a
 * configuration the schema accepts is one the dialer can reach. No Node
 * import: `Env.ts` uses it too.
 */

const split = (address: string, lowestPort: number): { readonly host: string; readonly port: number } | undefined => {
  const match = /^(.+):(\d{1,5})$/.exec(address)
  if (match === null) return undefined
  const port = Number(match[2])
  if (port < lowestPort || port > 65535) return undefined
  // An IPv6 literal is written in brackets (`[::1]:7400`).
  return { host: match[1]!.replace(/^\[(.*)\]$/, "$1"), port }
}

/** A `host:port` address to dial, split; `undefined` when it is not one. */
export const parseAddress = (address: string): { readonly host: string; readonly port: number } | undefined =>
  split(address, 1)

/** A `host:port` address to listen on: like {@link parseAddress}, but port 0 (any free port) is allowed. */
export const parseListenAddress = (address: string): { readonly host: string; readonly port: number } | undefined =>
  split(address, 0)

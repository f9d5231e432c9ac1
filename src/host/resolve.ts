/**
 * What the Env's process of a daemon imports, and how it is started to
 * import it: the caller's module URL itself when nothing was shipped (the
 * program is at the same path on the host: a shared file system, loopback),
 * or the shipped program's entry, served from the daemon's cache by the
 * shipping loader (shipping.ts), installed by a `--import` preload.
 */
import { type Manifest, preloadEnv, preloadUrl } from "./shipping.ts"

/** How to start the Env's process for one module. */
export interface Resolved {
  readonly module: string
  readonly execArgv: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
}

/** Resolves the module the caller named, shipped as `bundle` when given. */
export const resolveModule = (
  module: string,
  bundle: { readonly manifest: Manifest; readonly cacheDir: string } | undefined
): Resolved =>
  bundle === undefined
    ? { module, execArgv: [], env: {} }
    : {
        module: bundle.manifest.entry,
        execArgv: ["--import", preloadUrl],
        env: preloadEnv(bundle.cacheDir, bundle.manifest.hash)
      }

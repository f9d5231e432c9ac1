/**
 * Preload of a host daemon's child: `node --import <this module> envMain.ts`
 * with `CORPS_SHIPPED_CACHE` (the cache directory) and
 * `CORPS_SHIPPED_MANIFEST` (the manifest hash the start request named) in
 * its environment installs the shipping loader before any other module is
 * loaded, so every shipped URL — effect-corps' own sources included, when the
 * caller reached them relatively — is served from the cache, and caller and
 * child run the same bytes. `CORPS_SHIPPED_PACKAGES`, when set, is the folder
 * packages resolve from (default: the effect-corps package root).
 *
 * Without `CORPS_SHIPPED_CACHE` it does nothing. A wrong manifest or a
 * missing file throws a `ShippingError`, which ends the child before it
 * imports anything of the program.
 *
 * `--import` and the environment are inherited by processes the child forks
 * and by its worker threads, so the loader is installed there too.
 *
 * @since 0.4.0
 */
import { installLoader, readManifestSync } from "./shipping.ts"

const cacheDir = process.env.CORPS_SHIPPED_CACHE
const hash = process.env.CORPS_SHIPPED_MANIFEST
if (cacheDir !== undefined && cacheDir !== "") {
  if (hash === undefined || hash === "") throw new Error("CORPS_SHIPPED_CACHE is set without CORPS_SHIPPED_MANIFEST")
  const fromDir = process.env.CORPS_SHIPPED_PACKAGES
  installLoader(cacheDir, readManifestSync(cacheDir, hash), {
    expectedHash: hash,
    ...(fromDir === undefined || fromDir === "" ? {} : { fromDir })
  })
}

/**
 * The failures of code shipping (docs/hosts.md, "Code shipping"): collecting
 * a program's module graph on the caller, storing it in a daemon's cache, and
 * loading it in a host's child process.
 *
 * They are Schema tagged errors because a daemon sends them back to the
 * caller over the wire.
 *
 * @since 0.4.0
 */
import { Schema } from "effect"

/**
 * Why a file could not be shipped, stored or loaded.
 *
 * - `Unreadable`: the caller could not read a file of the graph (missing,
 *   a directory, no permission); `detail` names the file that imports it.
 * - `Unparsable`: a file's imports could not be read (a syntax error, or
 *   TypeScript that Node's type stripping refuses, such as an `enum`).
 * - `Unsupported`: the graph needs what shipping cannot carry (a CommonJS
 *   file, a `#subpath` import, a `.node` addon, an extension Node cannot
 *   import as a module).
 * - `TooLarge`: a file, or the whole graph, exceeds its limit.
 * - `HashMismatch`: bytes whose sha256 is not the one announced, or a
 *   manifest whose hash does not match its content or the start request.
 * - `Invalid`: a hash that is not 64 lowercase hex digits, or a manifest
 *   that does not decode.
 * - `Missing`: the cache lacks a file the manifest lists.
 * - `Unwritable`: the cache directory could not be created or written.
 *
 * @since 0.4.0
 * @category errors
 */
export const ShippingErrorReason = Schema.Literals([
  "Unreadable",
  "Unparsable",
  "Unsupported",
  "TooLarge",
  "HashMismatch",
  "Invalid",
  "Missing",
  "Unwritable"
])

/**
 * @since 0.4.0
 * @category errors
 */
export type ShippingErrorReason = typeof ShippingErrorReason.Type

/**
 * A file of the program could not be collected, stored or loaded. `file` is
 * the caller's file URL (or a hash, for a cache object, or `"manifest"`).
 *
 * @since 0.4.0
 * @category errors
 */
export class ShippingError extends Schema.TaggedError<ShippingError>()("ShippingError", {
  reason: ShippingErrorReason,
  file: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `cannot ship ${this.file}: ${this.reason}: ${this.detail}`
  }
}

/**
 * The program imports a package that does not resolve on the host. Shipping
 * carries only the files reached through relative imports; packages (bare
 * specifiers such as `effect`) must be installed where the daemon runs.
 * `host` names the daemon, when the error crosses back to the caller.
 *
 * @since 0.4.0
 * @category errors
 */
export class PackageMissing extends Schema.TaggedError<PackageMissing>()("PackageMissing", {
  package: Schema.String,
  host: Schema.optional(Schema.String),
  /** The directory it was looked for from (the daemon's package root). */
  from: Schema.String
}) {
  override get message(): string {
    return `package ${this.package} is not installed on ${this.host ?? "the host"} (looked up from ${this.from}): install it there`
  }
}

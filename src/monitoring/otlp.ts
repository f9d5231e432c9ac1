/**
 * The OTLP/HTTP tracer of one runtime — the caller's, or an Env's, whose
 * resource names its Env and slot. A module of its own, imported only when
 * an OTLP endpoint is configured: an Env without tracing never loads the
 * exporter and its HTTP client.
 */
import { Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { OtlpSerialization, OtlpTracer } from "effect/observability"
import type { Settings } from "../internal/monitoring.ts"

/**
 * A Layer providing a Tracer that exports sampled spans to `otlp.url` as
 * OTLP JSON, once a second and when its scope closes.
 *
 * @since 0.3.0
 * @category layers
 */
export const tracerLayer = (
  otlp: NonNullable<Settings["otlp"]>,
  attributes: Record<string, unknown>
): Layer.Layer<never> =>
  OtlpTracer.layer({
    url: otlp.url,
    headers: otlp.headers,
    resource: { serviceName: otlp.serviceName ?? "effect-corps", attributes },
    exportInterval: "1 second",
    shutdownTimeout: "2 seconds"
  }).pipe(Layer.provide(OtlpSerialization.layerJson), Layer.provide(FetchHttpClient.layer)) as Layer.Layer<never>

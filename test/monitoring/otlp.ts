/**
 * A real OTLP/HTTP receiver for tests: a `node:http` server that decodes the
 * JSON trace exports it is sent and keeps every span with its resource.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"

/** One received span, flattened. */
export interface ReceivedSpan {
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly kind: number
  readonly attributes: Readonly<Record<string, unknown>>
  /** Its resource's attributes (`service.name`, `corps.env`…). */
  readonly resource: Readonly<Record<string, unknown>>
}

const anyValueOf = (value: any): unknown =>
  value?.stringValue ?? value?.intValue ?? value?.doubleValue ?? value?.boolValue ?? value

const attributesOf = (list: ReadonlyArray<any> | undefined): Record<string, unknown> =>
  Object.fromEntries((list ?? []).map((kv) => [kv.key, anyValueOf(kv.value)]))

/** Starts a receiver for the scope; `url` is its traces endpoint. */
export const receiver = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ readonly url: string; readonly spans: Array<ReceivedSpan>; readonly close: () => void }>(
        (resolve) => {
          const spans: Array<ReceivedSpan> = []
          const server = createServer((request, response) => {
            const chunks: Array<Buffer> = []
            request.on("data", (chunk: Buffer) => chunks.push(chunk))
            request.on("end", () => {
              const body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
              for (const resourceSpans of body.resourceSpans ?? []) {
                const resource = attributesOf(resourceSpans.resource?.attributes)
                for (const scope of resourceSpans.scopeSpans ?? []) {
                  for (const span of scope.spans ?? []) {
                    spans.push({
                      name: span.name,
                      traceId: span.traceId,
                      spanId: span.spanId,
                      parentSpanId: span.parentSpanId || undefined,
                      kind: span.kind,
                      attributes: attributesOf(span.attributes),
                      resource
                    })
                  }
                }
              }
              response.writeHead(200, { "content-type": "application/json" })
              response.end("{}")
            })
          })
          server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as AddressInfo
            resolve({
              url: `http://127.0.0.1:${port}/v1/traces`,
              spans,
              close: () => {
                server.closeAllConnections()
                server.close()
              }
            })
          })
        }
      )
  ),
  (r) => Effect.sync(r.close)
)

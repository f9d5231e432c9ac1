/**
 * The `effect/http-api` description of a gateway, derived from Worker
 * contracts: one group per Worker, one `POST /{Worker}/{method}` endpoint per
 * method, every error with its HTTP status. The OpenAPI document and the
 * docs page are made from it; `server.ts` serves the same paths and reads the
 * same error table (`errorTable`), so what is served is what is documented.
 */
import { Schema } from "effect"
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpApiSecurity,
  OpenApi
} from "effect/http-api"
import {
  type CallError,
  callErrorClasses,
  GatewayUnauthorized,
  InvalidPayload,
  PayloadTooLarge
} from "../CorpsError.ts"
import type { AnyWorker, MethodSpec } from "../Worker.ts"

/**
 * The HTTP status of each error effect-corps itself raises on a call, by the
 * error's `_tag`. Typed over every {@link CallError}, so a new call error does
 * not compile until it has a status here. docs/external.md shows the same
 * table: keep them together.
 */
export const callErrorStatus: { readonly [Tag in CallError["_tag"]]: number } = {
  UnknownWorker: 404,
  UnknownMethod: 404,
  InstanceClosed: 410,
  CorpsMailboxFull: 429,
  WorkerDefect: 500,
  SerializationError: 500,
  PoisonCall: 500,
  DownstreamFailed: 502,
  CallLost: 503,
  CorpsClosed: 503,
  WorkerStopped: 503,
  CorpsFailed: 503,
  InstanceStartFailed: 503,
  InvalidInit: 400,
  InvalidLocation: 400
}

/** The status of a contract's own error that declares none (`httpApiStatus`). */
export const CONTRACT_ERROR_STATUS = 422

const withStatus = (schema: Schema.Top, status: number): Schema.Top => schema.pipe(HttpApiSchema.status(status))

/** The status a schema declares with `httpApiStatus` (on itself or as a class annotation), if any. */
const declaredStatus = (schema: Schema.Top): number | undefined => {
  const ast = schema.ast as any
  for (const check of ast.checks ?? []) {
    if (typeof check.annotations?.httpApiStatus === "number") return check.annotations.httpApiStatus
  }
  const own = ast.annotations?.httpApiStatus ?? ast.context?.annotations?.httpApiStatus
  if (typeof own === "number") return own
  // A class schema keeps its annotations on the declaration it encodes to.
  const encoded = ast.encoding?.[0]?.to?.annotations?.httpApiStatus
  return typeof encoded === "number" ? encoded : undefined
}

/** One error a method can answer with, and its HTTP status. */
export interface ErrorEntry {
  readonly schema: Schema.Top
  readonly status: number
}

/**
 * A contract's error Schema as entries: a union is split into its members so
 * that each keeps its own status; a member without one gets
 * {@link CONTRACT_ERROR_STATUS}.
 */
export const contractErrors = (error: Schema.Top | undefined): ReadonlyArray<ErrorEntry> => {
  if (error === undefined) return []
  const members: ReadonlyArray<Schema.Top> =
    Array.isArray((error as any).members) && error.ast._tag === "Union" ? (error as any).members : [error]
  return members.map((schema) => ({ schema, status: declaredStatus(schema) ?? CONTRACT_ERROR_STATUS }))
}

/** effect-corps' call errors as entries, each class with its status. */
const callErrorEntries: ReadonlyArray<ErrorEntry> = callErrorClasses.map((schema) => ({
  schema: schema as Schema.Top,
  status: callErrorStatus[schema.identifier as CallError["_tag"]]
}))

/**
 * Every error a method's endpoint answers with after the call was made, in
 * the order they are matched: the contract's own, then effect-corps' call
 * errors. The OpenAPI document reads this table; the server matches the same
 * two parts (`contractErrors`, then `isCallError` and `callErrorStatus`).
 */
export const errorTable = (spec: MethodSpec): ReadonlyArray<ErrorEntry> => [
  ...contractErrors(spec.error),
  ...callErrorEntries
]

/** Refusals made before any call: they are part of every endpoint's documented responses. */
const requestErrors: ReadonlyArray<Schema.Top> = [withStatus(InvalidPayload, 400), withStatus(PayloadTooLarge, 413)]

/**
 * The bearer-token check as an `effect/http-api` security middleware: it
 * declares the scheme and the 401 in the OpenAPI document. The server checks
 * the token itself (server.ts), with the same answer.
 */
export class GatewayAuth extends HttpApiMiddleware.Service<GatewayAuth>()("effect-corps/Gateway/Auth", {
  security: { bearer: HttpApiSecurity.bearer },
  error: withStatus(GatewayUnauthorized, 401) as typeof GatewayUnauthorized
}) {}

/** The payload Schema of a method as the RPC group declares it (fields become a struct). */
export const payloadSchemaOf = (worker: AnyWorker, method: string): Schema.Top | undefined => {
  const spec = worker.methods[method] as MethodSpec
  if (spec.payload === undefined) return undefined
  const rpc = worker.group.requests.get(method) as { readonly payloadSchema: Schema.Top } | undefined
  return rpc?.payloadSchema
}

/** The path of a method's endpoint. */
export const pathOf = (worker: string, method: string): `/${string}` => `/${worker}/${method}`

/** The methods a gateway serves for a Worker: the declared ones (not the hidden lifetime methods of created instances). */
export const servedMethods = (worker: AnyWorker): ReadonlyArray<string> =>
  Object.keys(worker.methods).filter((method) => !method.startsWith("$"))

const endpointOf = (worker: AnyWorker, method: string) => {
  const spec = worker.methods[method] as MethodSpec
  const payload = payloadSchemaOf(worker, method)
  const success =
    spec.stream === true
      ? HttpApiSchema.StreamNdjson({ schema: spec.success ?? Schema.Null })
      : (spec.success ?? HttpApiSchema.NoContent)
  const options: Record<string, unknown> = {
    query: { key: Schema.optional(Schema.String) },
    success,
    error: [...errorTable(spec).map(({ schema, status }) => withStatus(schema, status)), ...requestErrors]
  }
  if (payload !== undefined) options.payload = payload
  return HttpApiEndpoint.post(method, pathOf(worker.key, method), options as any)
}

/** The HttpApi of `workers`: a group per Worker (named after it), an endpoint per method. */
export const makeApi = (
  workers: ReadonlyArray<AnyWorker>,
  options: { readonly title: string; readonly auth: boolean }
): HttpApi.Top => {
  let api: any = HttpApi.make("effect-corps-gateway")
  for (const worker of workers) {
    let group: any = HttpApiGroup.make(worker.key)
    for (const method of servedMethods(worker)) group = group.add(endpointOf(worker, method))
    if (options.auth) group = group.middleware(GatewayAuth)
    api = api.add(group)
  }
  return api.annotateMerge(OpenApi.annotations({ title: options.title })) as HttpApi.Top
}

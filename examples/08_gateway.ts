/**
 * 08 — A Corps behind HTTP.
 *
 * A Library Func runs in a worker thread, a Shelf Conc (one per key) in the
 * caller's runtime. `Gateway.layer` serves both over HTTP, with a bearer
 * token, derived from their contracts; the program then calls them itself
 * with `fetch`, as any HTTP client would, prints what it gets and exits.
 * Set GATEWAY_SECONDS to keep serving that long afterwards (for curl, or
 * for the page at /docs).
 *
 * Prints (the port varies):
 *
 *   gateway: http://127.0.0.1:40123   (docs: http://127.0.0.1:40123/docs)
 *   POST /Library/lookup {"isbn":"978-0"} -> 200 {"title":"Dune","pages":412}
 *   POST /Library/lookup {"isbn":"000"} -> 422 {"_tag":"NoSuchBook","isbn":"000"}
 *   POST /Library/lookup {"isbn":42} -> 400 {"_tag":"InvalidPayload","worker":"Library","method":"lookup","issue":"Expected string\n  at [\"isbn\"]"}
 *   POST /Shelf/put?key=alice {"isbn":"978-0"} -> 200 1
 *   POST /Shelf/put?key=alice {"isbn":"978-1"} -> 200 2
 *   POST /Shelf/put?key=bob {"isbn":"978-1"} -> 200 1
 *   POST /Library/pages {"isbn":"978-1","from":1,"to":3} -> 200 (NDJSON) {"page":1,"text":"Solaris, page 1"} … {"page":3,…}
 *   POST /Library/lookup (no token) -> 401 {"_tag":"GatewayUnauthorized","reason":"missing"}
 *   GET /openapi.json -> 200, 3 paths: /Library/lookup, /Library/pages, /Shelf/put
 *
 * Run: npm run example:gateway
 */
import { Console, Effect, Layer, Redacted, Schema, Stream } from "effect"
import { Corps, Gateway, Worker } from "../src/index.ts"
import { NodeEnv } from "../src/node/index.ts"

/** The book asked for is not in the library (answered 422: it declares no status). */
class NoSuchBook extends Schema.TaggedError<NoSuchBook>()("NoSuchBook", { isbn: Schema.String }) {}

const Book = Schema.Struct({ title: Schema.String, pages: Schema.Int })

/** A library catalogue: look a book up, read its pages as a stream. */
class Library extends Worker.Service<Library>()("Library", {
  lookup: { payload: { isbn: Schema.String }, success: Book, error: NoSuchBook },
  pages: {
    payload: { isbn: Schema.String, from: Schema.Int, to: Schema.Int },
    success: Schema.Struct({ page: Schema.Int, text: Schema.String }),
    error: NoSuchBook,
    stream: true
  }
}) {}

const books: Record<string, typeof Book.Type> = {
  "978-0": { title: "Dune", pages: 412 },
  "978-1": { title: "Solaris", pages: 204 }
}

export const LibraryLive = Library.func({
  lookup: ({ isbn }) => {
    const book = books[isbn]
    return book === undefined ? Effect.fail(new NoSuchBook({ isbn })) : Effect.succeed(book)
  },
  pages: ({ isbn, from, to }) => {
    const book = books[isbn]
    if (book === undefined) return Stream.fail(new NoSuchBook({ isbn }))
    return Stream.range(from, Math.min(to, book.pages)).pipe(
      Stream.map((page) => ({ page, text: `${book.title}, page ${page}` }))
    )
  }
})

/** A reader's shelf (one instance per key): how many books are on it. */
class Shelf extends Worker.Service<Shelf>()("Shelf", {
  put: { payload: { isbn: Schema.String }, success: Schema.Int }
}) {}

export const ShelfLive = Shelf.conc(
  Effect.sync(() => {
    const held = new Set<string>()
    return {
      put: ({ isbn }) => {
        held.add(isbn)
        return held.size
      }
    }
  })
)

if (import.meta.main) {
  const token = "let-me-in"
  const seconds = Number(process.env.GATEWAY_SECONDS ?? 0)

  const App = Gateway.layer([Library, Shelf], {
    port: Number(process.env.PORT ?? 0),
    auth: { bearer: Redacted.make(token) }
  }).pipe(
    Layer.provide(
      Corps.layer([LibraryLive, ShelfLive], {
        module: import.meta.url,
        placement: { envs: { catalogue: { kind: "thread", count: 1 } }, workers: { Library: { env: "catalogue" } } }
      })
    ),
    Layer.provide(NodeEnv.layer)
  )

  const program = Effect.gen(function* () {
    const { url } = yield* Gateway.Gateway
    yield* Console.log(`gateway: ${url}   (docs: ${url}/docs)`)
    const call = (path: string, payload: unknown, options: { readonly token?: boolean } = {}) =>
      Effect.promise(async () => {
        const response = await fetch(url + path, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(options.token === false ? {} : { authorization: `Bearer ${token}` })
          },
          body: JSON.stringify(payload)
        })
        const text = (await response.text()).trim()
        const body =
          response.headers.get("content-type") === "application/x-ndjson"
            ? `(NDJSON) ${text.split("\n").join(" ")}`
            : text
        console.log(
          `POST ${path}${options.token === false ? " (no token)" : ` ${JSON.stringify(payload)}`} -> ${response.status} ${body}`
        )
      })
    yield* call("/Library/lookup", { isbn: "978-0" })
    yield* call("/Library/lookup", { isbn: "000" })
    yield* call("/Library/lookup", { isbn: 42 })
    yield* call("/Shelf/put?key=alice", { isbn: "978-0" })
    yield* call("/Shelf/put?key=alice", { isbn: "978-1" })
    yield* call("/Shelf/put?key=bob", { isbn: "978-1" })
    yield* call("/Library/pages", { isbn: "978-1", from: 1, to: 3 })
    yield* call("/Library/lookup", { isbn: "978-0" }, { token: false })
    const openapi = yield* Effect.promise(
      () => fetch(`${url}/openapi.json`).then((r) => r.json()) as Promise<{ paths: Record<string, unknown> }>
    )
    const paths = Object.keys(openapi.paths)
    yield* Console.log(`GET /openapi.json -> 200, ${paths.length} paths: ${paths.join(", ")}`)
    if (seconds > 0) yield* Effect.sleep(`${seconds} seconds`)
  })

  await Effect.runPromise(program.pipe(Effect.provide(App)))
  process.exit(0)
}

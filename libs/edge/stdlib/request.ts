/** A handler as an edge app writes one: `fly.http.respondWith(handler)`, `fetch(request, env, ctx)`. */
export type Handler = (request: Request, ...rest: never[]) => Response | Promise<Response>;

/** What the library's handlers take: a Request, or a URL and init as fetch takes them. */
export type RequestInput = Request | string | URL;

/** The input as a Request. */
export function toRequest(input: RequestInput, init?: RequestInit): Request {
  return input instanceof Request && init === undefined ? input : new Request(input, init);
}

/** Methods whose requests carry no body. */
const BODYLESS = new Set(["GET", "HEAD"]);

/**
 * The request's body read whole (undefined for GET and HEAD), so it can be sent again: bodies cross
 * an isolate's boundary whole anyway (contract: EDGE_BODY_MAX_BYTES).
 */
export async function bufferBody(request: Request): Promise<ArrayBuffer | undefined> {
  if (BODYLESS.has(request.method)) return undefined;
  return request.arrayBuffer();
}

/** A copy of `request` for another URL (and headers), with a body already read. */
export function rebuildRequest(
  request: Request,
  url: string,
  body: ArrayBuffer | undefined,
  headers: Headers = request.headers,
): Request {
  return new Request(url, { method: request.method, headers, body, redirect: "manual" });
}

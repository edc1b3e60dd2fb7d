/** Requests and responses carried between Node's web types and the edge runtime's (`hangar edge test` and dev). */
import {
  EDGE_BODY_MAX_BYTES,
  EdgeError,
  type EdgeHttpRequest,
  type EdgeHttpResponse,
  type EdgeRuntimeLike,
} from "@hangar/edge";

/** Statuses whose responses have no body (the Fetch standard's null body statuses). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** A Response of Node's from what the runtime answered. */
export function toWebResponse(res: EdgeHttpResponse): Response {
  const body = NULL_BODY.has(res.status) ? null : res.body;
  return new Response(body, { status: res.status, statusText: res.statusText ?? "", headers: res.headers });
}

/** The request as the runtime takes it: an absolute URL (a path gets `http://<app>.test`), Host set. */
export async function fromWebRequest(
  app: string,
  input: Request | string | URL,
  init?: RequestInit,
): Promise<EdgeHttpRequest> {
  const url = typeof input === "string" && input.startsWith("/") ? `http://${app}.test${input}` : input;
  const request = new Request(url, init);
  const headers: [string, string][] = [];
  request.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers.push([name, value]);
  });
  if (!request.headers.has("host")) headers.unshift(["host", new URL(request.url).host]);
  const bytes = request.body ? new Uint8Array(await request.arrayBuffer()) : undefined;
  if (bytes && bytes.byteLength > EDGE_BODY_MAX_BYTES) {
    throw new RangeError(`a request body is larger than ${EDGE_BODY_MAX_BYTES} bytes`);
  }
  return { method: request.method, url: request.url, headers, ...(bytes ? { body: bytes } : {}) };
}

/** What the client gets when the app's code gave no answer, as the proxy answers it: `{"error","status"}`. */
export function edgeErrorResponse(err: EdgeError): EdgeHttpResponse {
  const body = new TextEncoder().encode(
    `${JSON.stringify({ error: err.message, status: err.status, code: err.code })}\n`,
  );
  return { status: err.status, headers: [["content-type", "application/json"]], body };
}

/** Runs a request through the runtime; the code's failure becomes edgeErrorResponse. */
export async function dispatchOrError(
  runtime: EdgeRuntimeLike,
  app: string,
  req: EdgeHttpRequest,
): Promise<EdgeHttpResponse> {
  try {
    return await runtime.dispatch(app, req);
  } catch (err) {
    if (err instanceof EdgeError) return edgeErrorResponse(err);
    throw err;
  }
}

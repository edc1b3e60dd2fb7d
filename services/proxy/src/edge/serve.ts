import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import { EDGE_BODY_MAX_BYTES, EdgeError, type EdgeHttpRequest, type EdgeHttpResponse } from "@hangar/edge";
import { context, extractTraceContext, SpanKind, SpanStatusCode, tracer } from "@hangar/telemetry";
import type { ProxyEngine } from "../engine/engine.js";
import { downstreamResponse, type Forwarding, upstreamRequest } from "../engine/headers.js";
import { refuse } from "../engine/refusal.js";

/** The edge apps a proxy serves: whether a Host's app is one, and its code's answer to a request. */
export interface EdgeApps {
  /** Whether the app has a live edge release here (its requests run its code, not its machines). */
  has(app: string): boolean;
  /** Runs the app's handler; rejects with EdgeError when its code gives no answer. */
  dispatch(app: string, req: EdgeHttpRequest): Promise<EdgeHttpResponse>;
}

/** How much of one app's edge traffic a proxy process takes at once. */
export interface EdgeServeLimits {
  /** The app's requests in flight, from their arrival until their answer is sent. */
  requestsPerApp: number;
  /** Client body bytes the app's requests in flight hold (each body at most EDGE_BODY_MAX_BYTES). */
  bodyBytesPerApp: number;
}

export const EDGE_SERVE_LIMITS: Readonly<EdgeServeLimits> = Object.freeze({
  requestsPerApp: 128,
  bodyBytesPerApp: 64 * 1024 * 1024,
});

/** What each app's requests in flight hold in this process (an app is here while it has some). */
const loads = new Map<string, { requests: number; bodyBytes: number }>();

/** An app's request the proxy will not take now: too much of the app's traffic is in flight. */
class EdgeBusyError extends Error {}

/**
 * Serves a client request with an edge app's code: the request as a machine would get it (Fly's
 * forwarding headers, hop-by-hop ones dropped, the body whole), the code's answer with the proxy's
 * signature, or the code's failure as the proxy's `{"error","status"}` refusal with its status.
 * Past the app's `limits` (requests or body bytes in flight) it answers 503 `edge_busy`.
 */
export function serveEdge(
  engine: ProxyEngine,
  edge: EdgeApps,
  app: string,
  req: IncomingMessage,
  res: ServerResponse,
  limits: Readonly<EdgeServeLimits> = EDGE_SERVE_LIMITS,
): void {
  const arrivedAt = performance.now();
  const fwd = engine.forwarding(req);
  const upstream = upstreamRequest(req.rawHeaders, fwd, false);
  const headers: [string, string][] = [];
  for (let i = 0; i < upstream.headers.length; i += 2) {
    headers.push([(upstream.headers[i] as string).toLowerCase(), upstream.headers[i + 1] as string]);
  }
  const metrics = engine.appMetrics(app);
  // A trace per edge request, as per proxied one: a server span, child of the client's traceparent.
  const parent =
    upstream.traceparent === undefined
      ? context.active()
      : extractTraceContext(
          {
            get: (k: string) =>
              (k === "traceparent" ? upstream.traceparent : k === "tracestate" ? upstream.tracestate : "") ??
              "",
            set() {},
          },
          context.active(),
        );
  const span = tracer().startSpan(
    `edge ${req.method ?? "GET"}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        "hangar.app": app,
        "hangar.edge": true,
        "http.request.method": req.method ?? "",
        "fly.request_id": fwd.requestId,
      },
    },
    parent,
  );
  res.once("close", () => {
    const status = res.headersSent ? res.statusCode : undefined;
    if (metrics) engine.metrics?.request(metrics, status, (performance.now() - arrivedAt) / 1000);
    span.setAttribute("http.response.status_code", status ?? 0);
    if (status === undefined || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  let load = loads.get(app);
  if (load === undefined) {
    load = { requests: 0, bodyBytes: 0 };
    loads.set(app, load);
  }
  if (load.requests >= limits.requestsPerApp) {
    busy(
      res,
      `edge app ${app} has ${limits.requestsPerApp} requests in flight on this proxy, the most it takes at once`,
      fwd,
      app,
    );
    return;
  }
  const held = load;
  held.requests++;
  let heldBytes = 0;
  res.once("close", () => {
    held.requests--;
    held.bodyBytes -= heldBytes;
    if (held.requests === 0) loads.delete(app);
  });
  const reserve = (bytes: number): boolean => {
    if (held.bodyBytes + bytes > limits.bodyBytesPerApp) return false;
    held.bodyBytes += bytes;
    heldBytes += bytes;
    return true;
  };
  const method = req.method ?? "GET";
  const url = `http://${upstream.host ?? app}${req.url ?? "/"}`;
  const run = (body: Uint8Array | undefined) => {
    edge.dispatch(app, body === undefined ? { method, url, headers } : { method, url, headers, body }).then(
      (answer) => answerWith(res, answer, method, fwd, app),
      (err: unknown) => {
        // Why the code gave no answer (cpu_limit, memory_limit, compile, ...), on the request's span.
        span.setAttribute("hangar.edge.error", err instanceof EdgeError ? err.code : "edge_failed");
        failWith(engine, res, err, fwd, app);
      },
    );
  };
  if (!upstream.hasBody) {
    run(undefined);
    return;
  }
  readBody(req, reserve).then(run, (err: Error) => {
    if (res.headersSent || res.destroyed) return;
    if (err instanceof EdgeBusyError) {
      const most = limits.bodyBytesPerApp;
      busy(
        res,
        `edge app ${app}'s requests in flight on this proxy hold ${most} bytes of request bodies, the most it takes at once`,
        fwd,
        app,
      );
    } else refuse(res, { status: 413, code: "body_too_large", message: err.message, app }, fwd);
  });
}

function busy(res: ServerResponse, message: string, fwd: Forwarding, app: string): void {
  refuse(res, { status: 503, code: "edge_busy", message, app, retryAfter: 1 }, fwd);
}

/**
 * The client's body, whole; rejects once it passes EDGE_BODY_MAX_BYTES, or with EdgeBusyError once
 * `reserve` refuses its bytes (the app's requests in flight hold their most); the rest is drained.
 */
function readBody(req: IncomingMessage, reserve: (bytes: number) => boolean): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > EDGE_BODY_MAX_BYTES) {
        over = true;
        chunks.length = 0;
        reject(
          new Error(`the request body is over ${EDGE_BODY_MAX_BYTES} bytes, the most an edge app takes`),
        );
        return;
      }
      if (!reserve(chunk.length)) {
        over = true;
        chunks.length = 0;
        reject(new EdgeBusyError("the app's request bodies in flight are at their most"));
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => {
      if (!over) resolve(Buffer.concat(chunks, size));
    });
    req.once("error", reject);
  });
}

/** A header name: an RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

// Statuses whose answer has no body (RFC 9110 §6.4.1).
function bodiless(status: number, method: string): boolean {
  return method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200);
}

function answerWith(
  res: ServerResponse,
  answer: EdgeHttpResponse,
  method: string,
  fwd: Forwarding,
  app: string,
): void {
  if (res.destroyed || res.headersSent) return;
  const raw: string[] = [];
  for (const [name, value] of answer.headers) {
    const lower = name.toLowerCase();
    // The proxy frames the body it has whole (downstreamResponse drops the hop-by-hop headers,
    // Transfer-Encoding among them, in any case); a name that is not a token never reaches the wire.
    if (lower === "content-length" || !HEADER_NAME.test(lower)) continue;
    raw.push(lower, value);
  }
  const headers = downstreamResponse(raw, fwd.requestId, fwd.via, fwd.region, false);
  const empty = bodiless(answer.status, method);
  if (!empty || method === "HEAD") headers.push("Content-Length", String(answer.body.byteLength));
  try {
    res.writeHead(answer.status, answer.statusText || (STATUS_CODES[answer.status] ?? ""), headers);
  } catch (err) {
    // Node refuses a head it cannot write (a bad status or header value).
    refuse(
      res,
      {
        status: 502,
        code: "bad_response",
        message: `edge app ${app} answered a response the proxy cannot send (${(err as Error).message})`,
        app,
      },
      fwd,
    );
    return;
  }
  res.end(empty ? undefined : answer.body);
}

function failWith(
  engine: ProxyEngine,
  res: ServerResponse,
  err: unknown,
  fwd: Forwarding,
  app: string,
): void {
  if (res.destroyed || res.headersSent) return;
  if (err instanceof EdgeError) {
    refuse(res, { status: err.status, code: err.code, message: err.message, app }, fwd);
    return;
  }
  engine.logger.warn({ err, app, request_id: fwd.requestId }, "edge runtime failed a request");
  refuse(res, { status: 500, code: "edge_failed", message: `edge app ${app} could not be run`, app }, fwd);
}

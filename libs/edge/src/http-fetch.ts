/**
 * An edge app's outbound fetch straight to the network, as `hangar edge dev` and `hangar edge test`
 * make it (the developer's own machine, localhost included): an EdgeFetcher for MemoryEdgeHost.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { EDGE_BODY_MAX_BYTES, type EdgeHttpRequest, type EdgeHttpResponse } from "./contract.js";

/** Headers of one connection: not sent on, and not handed back (the body crosses whole). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

function outgoingHeaders(headers: [string, string][], bodyLength: number | undefined): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    const key = name.toLowerCase();
    if (HOP_BY_HOP.has(key) || key === "content-length") continue;
    const had = out[key];
    out[key] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  if (bodyLength !== undefined) out["content-length"] = String(bodyLength);
  return out;
}

async function readWhole(res: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    total += (chunk as Buffer).byteLength;
    if (total > EDGE_BODY_MAX_BYTES) {
      res.destroy();
      throw new RangeError(`the response is larger than ${EDGE_BODY_MAX_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/** How long a fetch may take: its response head (connecting included), and the whole answer. */
export interface HttpFetchTimeouts {
  headMs: number;
  totalMs: number;
}

/** An origin that stalls never holds a fetch (nor its buffered bytes) longer than this. */
export const HTTP_FETCH_TIMEOUTS: Readonly<HttpFetchTimeouts> = Object.freeze({
  headMs: 30_000,
  totalMs: 60_000,
});

/** A fetch cut at one of its timeouts. */
export class HttpFetchTimeoutError extends Error {
  override readonly name = "HttpFetchTimeoutError";
}

/**
 * How httpFetch connects: `lookup` resolves the URL's name (the proxy's refuses private addresses);
 * `timeouts` replace HTTP_FETCH_TIMEOUTS' (tests).
 */
export interface HttpFetchOptions {
  lookup?: LookupFunction;
  timeouts?: Partial<HttpFetchTimeouts>;
}

/**
 * Sends a request to the URL's host over HTTP(S) as it is: `Host` as the request gives it (a proxy
 * sets an origin's), redirects not followed, the body not decoded (so the answer's content-encoding
 * and content-length stay true). Rejects with HttpFetchTimeoutError when the head or the whole answer
 * is later than its timeout.
 */
export function httpFetch(
  _app: string,
  req: EdgeHttpRequest,
  signal: AbortSignal,
  options: HttpFetchOptions = {},
): Promise<EdgeHttpResponse> {
  const url = new URL(req.url);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(new TypeError(`cannot fetch ${url.protocol} URLs`));
  }
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const { headMs, totalMs } = { ...HTTP_FETCH_TIMEOUTS, ...options.timeouts };
  return new Promise((resolveFetch, rejectFetch) => {
    let response: IncomingMessage | undefined;
    // Destroying the response too makes the body's reading reject with this error.
    const cut = (message: string) => {
      const err = new HttpFetchTimeoutError(`fetch of ${url.host}: ${message}`);
      if (response) response.destroy(err);
      else outgoing.destroy(err);
    };
    const headTimer = setTimeout(() => cut(`no response head within ${headMs} ms`), headMs);
    const totalTimer = setTimeout(() => cut(`the answer was not whole within ${totalMs} ms`), totalMs);
    const settle = () => {
      clearTimeout(headTimer);
      clearTimeout(totalTimer);
    };
    const resolve = (answer: EdgeHttpResponse) => {
      settle();
      resolveFetch(answer);
    };
    const reject = (err: unknown) => {
      settle();
      rejectFetch(err);
    };
    const outgoing = send(
      url,
      {
        method: req.method,
        headers: outgoingHeaders(req.headers, req.body?.byteLength),
        signal,
        ...(options.lookup ? { lookup: options.lookup } : {}),
      },
      (res) => {
        response = res;
        clearTimeout(headTimer);
        readWhole(res).then((body) => {
          const headers: [string, string][] = [];
          const raw = res.rawHeaders;
          for (let i = 0; i + 1 < raw.length; i += 2) {
            const name = (raw[i] as string).toLowerCase();
            if (!HOP_BY_HOP.has(name)) headers.push([name, raw[i + 1] as string]);
          }
          resolve({ status: res.statusCode ?? 502, statusText: res.statusMessage ?? "", headers, body });
        }, reject);
      },
    );
    outgoing.on("error", reject);
    outgoing.end(req.body);
  });
}

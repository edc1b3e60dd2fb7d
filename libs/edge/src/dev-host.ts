/**
 * The EdgeHost of `hangar edge dev` and `hangar edge test`: fetches go to the network as asked (the
 * developer's own machine: localhost included), the cache is in this process's memory, console lines
 * go where the embedder says.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import {
  EDGE_BODY_MAX_BYTES,
  type EdgeHost,
  type EdgeHttpRequest,
  type EdgeHttpResponse,
  type EdgeLogLevel,
} from "./contract.js";

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

/**
 * Sends a request to the URL's host over HTTP(S) as it is: `Host` as the request gives it (a proxy
 * sets an origin's), redirects not followed, the body not decoded (so the answer's content-encoding
 * and content-length stay true).
 */
export function networkFetch(req: EdgeHttpRequest, signal: AbortSignal): Promise<EdgeHttpResponse> {
  const url = new URL(req.url);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(new TypeError(`cannot fetch ${url.protocol} URLs`));
  }
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const outgoing = send(
      url,
      { method: req.method, headers: outgoingHeaders(req.headers, req.body?.byteLength), signal },
      (res) => {
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

/** A cache per app in this process's memory, each key with its own expiry. */
export class MemoryEdgeCache {
  private readonly apps = new Map<string, Map<string, { value: Uint8Array; expiresAt: number }>>();

  constructor(private readonly now: () => number = Date.now) {}

  private of(app: string): Map<string, { value: Uint8Array; expiresAt: number }> {
    let entries = this.apps.get(app);
    if (!entries) {
      entries = new Map();
      this.apps.set(app, entries);
    }
    return entries;
  }

  get(app: string, key: string): Uint8Array | undefined {
    const entries = this.of(app);
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= this.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry?.value;
  }

  set(app: string, key: string, value: Uint8Array, ttlSeconds?: number): void {
    const expiresAt = ttlSeconds === undefined ? Number.POSITIVE_INFINITY : this.now() + ttlSeconds * 1000;
    this.of(app).set(key, { value: value.slice(), expiresAt });
  }

  delete(app: string, key: string): boolean {
    return this.get(app, key) !== undefined && this.of(app).delete(key);
  }
}

/** The EdgeHost of the dev server and the test runner; `log` gets the app's console lines. */
export function createDevHost(log: (app: string, level: EdgeLogLevel, message: string) => void): EdgeHost {
  const cache = new MemoryEdgeCache();
  return {
    fetch: (_app, req, signal) => networkFetch(req, signal),
    log,
    cacheGet: async (app, key) => cache.get(app, key),
    cacheSet: async (app, key, value, ttlSeconds) => cache.set(app, key, value, ttlSeconds),
    cacheDelete: async (app, key) => cache.delete(app, key),
  };
}

/**
 * An EdgeHost kept in this process: a cache per app (with TTLs), console lines kept and handed to
 * `onLog`, fetch through a function the embedder gives (global fetch by default). `hangar edge dev`
 * and `hangar edge test` serve one app with it; tests use it as the proxy's stand-in.
 */
import type {
  EdgeHost,
  EdgeHttpRequest,
  EdgeHttpResponse,
  EdgeImageOp,
  EdgeImageResult,
  EdgeLogLevel,
} from "./contract.js";
import { transformImage } from "./image.js";

export interface EdgeLogLine {
  app: string;
  level: EdgeLogLevel;
  message: string;
}

export type EdgeFetcher = (
  app: string,
  req: EdgeHttpRequest,
  signal: AbortSignal,
) => Promise<EdgeHttpResponse>;

/** An outbound fetch through Node's fetch (undici), the body read whole. */
export async function networkFetch(
  _app: string,
  req: EdgeHttpRequest,
  signal: AbortSignal,
): Promise<EdgeHttpResponse> {
  const res = await fetch(req.url, {
    method: req.method,
    headers: req.headers,
    ...(req.body === undefined ? {} : { body: req.body }),
    redirect: "manual",
    signal,
  });
  const headers: [string, string][] = [];
  res.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers.push([name, value]);
  });
  for (const cookie of res.headers.getSetCookie()) headers.push(["set-cookie", cookie]);
  return {
    status: res.status,
    statusText: res.statusText,
    headers,
    body: new Uint8Array(await res.arrayBuffer()),
  };
}

export class MemoryEdgeHost implements EdgeHost {
  readonly logs: EdgeLogLine[] = [];
  private readonly caches = new Map<string, Map<string, { value: Uint8Array; expires: number }>>();

  constructor(
    private readonly fetcher: EdgeFetcher = networkFetch,
    private readonly onLog?: (line: EdgeLogLine) => void,
  ) {}

  fetch(app: string, req: EdgeHttpRequest, signal: AbortSignal): Promise<EdgeHttpResponse> {
    return this.fetcher(app, req, signal);
  }

  log(app: string, level: EdgeLogLevel, message: string): void {
    const line = { app, level, message };
    this.logs.push(line);
    this.onLog?.(line);
  }

  private cacheOf(app: string): Map<string, { value: Uint8Array; expires: number }> {
    let cache = this.caches.get(app);
    if (cache === undefined) {
      cache = new Map();
      this.caches.set(app, cache);
    }
    return cache;
  }

  async cacheGet(app: string, key: string): Promise<Uint8Array | undefined> {
    const cache = this.cacheOf(app);
    const entry = cache.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires <= Date.now()) {
      cache.delete(key);
      return undefined;
    }
    return entry.value.slice();
  }

  async cacheSet(app: string, key: string, value: Uint8Array, ttlSeconds?: number): Promise<void> {
    const expires = ttlSeconds === undefined ? Number.POSITIVE_INFINITY : Date.now() + ttlSeconds * 1000;
    this.cacheOf(app).set(key, { value: value.slice(), expires });
  }

  image(_app: string, input: Uint8Array, ops: EdgeImageOp[]): Promise<EdgeImageResult> {
    return transformImage(input, ops);
  }

  async cacheDelete(app: string, key: string): Promise<boolean> {
    return this.cacheOf(app).delete(key);
  }
}

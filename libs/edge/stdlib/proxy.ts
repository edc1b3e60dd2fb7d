import { bufferBody, type RequestInput, toRequest } from "./request.js";

/** What `proxy` takes besides the origin. */
export interface ProxyOptions {
  /** Headers set on every origin request; `false` removes the header. */
  headers?: Record<string, string | false>;
  /** A path on the origin that request paths are put under (after the origin URL's own path). */
  basePath?: string;
  /** A prefix taken off the request's path first (`mount` has already taken its mount path off). */
  stripPath?: string;
}

/** A fetch-like function that sends requests to one origin. */
export interface ProxyFetch {
  (input: RequestInput, init?: RequestInit): Promise<Response>;
  readonly origin: string;
}

/** Headers of one connection, never forwarded (RFC 9110 7.6.1), and lengths the new body recomputes. */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
];

/** `a` and `b` joined by one slash. */
function joinPath(a: string, b: string): string {
  if (a === "" || a === "/") return b;
  return `${a.replace(/\/+$/, "")}/${b.replace(/^\/+/, "")}`;
}

/** The path without `prefix` when it starts with it (at a segment's end), always starting with `/`. */
export function stripPrefix(path: string, prefix: string | undefined): string {
  const p = prefix?.replace(/\/+$/, "") ?? "";
  if (p === "" || (path !== p && !path.startsWith(`${p}/`))) return path;
  return path.slice(p.length) || "/";
}

/**
 * A fetch-like function that forwards each request to `origin`: the path rebased (stripPath taken
 * off, then put under the origin's path and basePath), the query kept, `Host` the origin's host and
 * `X-Forwarded-Host` the host the client asked for. Redirects come back to the client as they are.
 */
export function proxy(origin: string | URL, options: ProxyOptions = {}): ProxyFetch {
  const base = new URL(origin);
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new TypeError(`proxy: origin ${base.href} is not an http(s) URL`);
  }
  const prefix = joinPath(base.pathname, options.basePath ?? "/");
  const fn = async (input: RequestInput, init?: RequestInit): Promise<Response> => {
    const request = toRequest(input, init);
    const url = new URL(request.url);
    const target = new URL(base.href);
    target.pathname = joinPath(prefix, stripPrefix(url.pathname, options.stripPath));
    target.search = url.search;
    const headers = new Headers(request.headers);
    for (const name of HOP_BY_HOP) headers.delete(name);
    headers.set("host", target.host);
    headers.set("x-forwarded-host", url.host);
    // The scheme the client used: as the proxy in front said, else the request URL's.
    headers.set("x-forwarded-proto", request.headers.get("x-forwarded-proto") ?? url.protocol.slice(0, -1));
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (value === false) headers.delete(name);
      else headers.set(name, value);
    }
    const body = await bufferBody(request);
    return fetch(target.href, { method: request.method, headers, body, redirect: "manual" });
  };
  return Object.assign(fn, { origin: base.href });
}

export default proxy;

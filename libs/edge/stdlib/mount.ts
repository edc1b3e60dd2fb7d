import { bufferBody, type Handler, rebuildRequest } from "./request.js";

/** A mount path and what serves it. */
interface Mount {
  path: string;
  handler: Handler;
}

/** A handler that serves mounted handlers; `match` says which one a path goes to. */
export interface MountHandler {
  (request: Request, ...rest: never[]): Promise<Response>;
  match(path: string): { path: string; handler: Handler } | undefined;
}

/** A mount path without its trailing slashes (`/` stays `/`); it must start with `/`. */
function normalize(path: string): string {
  if (!path.startsWith("/")) throw new TypeError(`mount: path ${JSON.stringify(path)} must start with /`);
  return path.replace(/\/+$/, "") || "/";
}

/**
 * Serves each request with the handler mounted at the longest path that prefixes it (whole segments:
 * `/blog` takes `/blog` and `/blog/x`, not `/blogger`), with the mount path taken off the request's
 * URL (`/blog/x` reaches the handler as `/x`). A path no mount takes gets 404.
 */
export function mount(routes: Record<string, Handler>): MountHandler {
  const mounts: Mount[] = Object.entries(routes)
    .map(([path, handler]) => ({ path: normalize(path), handler }))
    .sort((a, b) => b.path.length - a.path.length);
  const match = (path: string): Mount | undefined =>
    mounts.find((m) => m.path === "/" || path === m.path || path.startsWith(`${m.path}/`));
  const fn = async (request: Request, ...rest: never[]): Promise<Response> => {
    const url = new URL(request.url);
    const found = match(url.pathname);
    if (!found) return new Response("no mount for this path\n", { status: 404 });
    if (found.path === "/") return found.handler(request, ...rest);
    url.pathname = url.pathname.slice(found.path.length) || "/";
    const rebased = rebuildRequest(request, url.href, await bufferBody(request));
    return found.handler(rebased, ...rest);
  };
  return Object.assign(fn, { match });
}

export default mount;

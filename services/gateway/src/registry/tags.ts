import type { Context } from "hono";
import { RegistryError } from "./errors.js";
import type { RegistryStore } from "./store.js";

/** GET /v2/<name>/tags/list, paginated with `n` and `last` and a Link header to the next page. */
export async function listTags(c: Context, store: RegistryStore, name: string): Promise<Response> {
  const all = await store.tags(name);
  if (all.length === 0)
    throw new RegistryError("NAME_UNKNOWN", `repository ${name} has no tags in the registry`, { name });
  const last = c.req.query("last");
  const nParam = c.req.query("n");
  const n = nParam === undefined ? undefined : Number(nParam);
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
    throw new RegistryError("PAGINATION_NUMBER_INVALID", `n must be a non-negative integer, got "${nParam}"`);
  }
  const after = last === undefined ? all : all.filter((t) => t > last);
  const page = n === undefined ? after : after.slice(0, n);
  if (n !== undefined && after.length > page.length && page.length > 0) {
    const next = `/v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1] as string)}`;
    c.header("link", `<${next}>; rel="next"`);
  }
  return c.json({ name, tags: page });
}

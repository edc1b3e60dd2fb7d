import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bundleEdgeApp } from "../src/bundler.js";
import { MemoryEdgeHost } from "../src/memory-host.js";
import { EdgeRuntime } from "../src/runtime.js";

// The library by its old import names inside a real isolate (the other files test it in Node).

const host = new MemoryEdgeHost(async (_app, req) => ({
  status: 200,
  headers: [["content-type", "text/plain"]],
  body: new TextEncoder().encode(`${req.url} host=${req.headers.find(([n]) => n === "host")?.[1]}`),
}));
const runtime = new EdgeRuntime(host);
let dir: string | undefined;
afterAll(async () => {
  await runtime.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const text = (body: Uint8Array) => new TextDecoder().decode(body);

describe("the standard library in the runtime", () => {
  it("@fly/cache keeps values per app with their TTL, @fly/mount and @fly/proxy route", async () => {
    dir = await mkdtemp(join(tmpdir(), "edge-stdlib-"));
    await writeFile(
      join(dir, "index.js"),
      `import cache from "@fly/cache";
      import { mount } from "@fly/mount";
      import proxy from "@fly/proxy";
      const counter = async () => {
        const n = Number((await cache.getString("hits")) ?? "0") + 1;
        await cache.set("hits", String(n), { ttl: 60 });
        return new Response("hits " + n);
      };
      export default { fetch: mount({ "/count": counter, "/api": proxy("http://api.internal", { basePath: "/v2" }) }) };`,
    );
    const { bundle } = await bundleEdgeApp(dir);
    for (const app of ["one", "two"]) await runtime.deploy(app, bundle, { appEnv: "production", vars: {} });
    const get = async (app: string, path: string) =>
      text(
        (await runtime.dispatch(app, { method: "GET", url: `http://${app}.test${path}`, headers: [] })).body,
      );
    expect(await get("one", "/count")).toBe("hits 1");
    expect(await get("one", "/count")).toBe("hits 2");
    // Another app has a cache of its own.
    expect(await get("two", "/count")).toBe("hits 1");
    expect(await get("one", "/api/users?x=1")).toBe("http://api.internal/v2/users?x=1 host=api.internal");
  });
});

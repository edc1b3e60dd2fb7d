import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleEdgeApp, detectEdgeEntry, looksLikeEdgeEntry } from "./bundler.js";
import { MemoryEdgeHost } from "./memory-host.js";
import { EdgeRuntime } from "./runtime.js";

let root: string;
const runtime = new EdgeRuntime(
  new MemoryEdgeHost(async (_app, req) => ({
    status: 200,
    headers: [],
    body: new TextEncoder().encode(`origin saw ${req.url}`),
  })),
);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hangar-edge-bundler-"));
});
afterAll(async () => {
  await runtime.dispose();
  await rm(root, { recursive: true, force: true });
});

async function app(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(root, name);
  for (const [file, text] of Object.entries(files)) {
    await mkdir(join(dir, file, ".."), { recursive: true });
    await writeFile(join(dir, file), text);
  }
  return dir;
}

describe("bundleEdgeApp", () => {
  it("bundles TypeScript with its local modules and the standard library's import names, and the bundle runs", async () => {
    const dir = await app("router", {
      "src/index.ts": `import { mount } from "@fly/fly";
        import proxy from "@fly/proxy";
        import { greeting } from "./greeting";
        const hello = (req: Request): Response => new Response(greeting(new URL(req.url).pathname));
        export default { fetch: mount({ "/docs": proxy("http://docs.internal"), "/": hello }) };`,
      "src/greeting.ts": `export const greeting = (path: string): string => "hello " + path;`,
    });
    const { bundle, warnings, entry } = await bundleEdgeApp(dir);
    expect(entry).toBe(join("src", "index.ts"));
    expect(warnings).toEqual([]);
    expect(bundle.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(bundle.code).not.toMatch(/^\s*import\s/m);
    await runtime.deploy("router", bundle, { appEnv: "production", vars: {} });
    const hello = await runtime.dispatch("router", {
      method: "GET",
      url: "http://r.test/there",
      headers: [],
    });
    expect(new TextDecoder().decode(hello.body)).toBe("hello /there");
    const docs = await runtime.dispatch("router", {
      method: "GET",
      url: "http://r.test/docs/a?b=1",
      headers: [],
    });
    expect(new TextDecoder().decode(docs.body)).toBe("origin saw http://docs.internal/a?b=1");
    // The same sources give the same bundle, so the same digest.
    expect((await bundleEdgeApp(dir)).bundle.digest).toBe(bundle.digest);
  });

  it("refuses Node's modules and says why, and says when there is no entry", async () => {
    const dir = await app("nodey", {
      "index.js": `import fs from "node:fs"; fly.http.respondWith(() => new Response(fs.readFileSync("/etc/passwd")))`,
    });
    await expect(bundleEdgeApp(dir)).rejects.toThrow(/"node:fs" is Node's: an edge app runs in a V8 isolate/);
    const empty = await app("empty", { "README.md": "nothing" });
    await expect(bundleEdgeApp(empty)).rejects.toThrow(/no edge entry in/);
  });
});

describe("detectEdgeEntry", () => {
  it("finds package.json's main, index.* or src/index.* when it registers a handler", async () => {
    expect(
      await detectEdgeEntry(
        await app("main", {
          "package.json": JSON.stringify({ main: "./lib/worker.js" }),
          "lib/worker.js": `addEventListener("fetch", (e) => e.respondWith(new Response("x")))`,
          "index.js": `fly.http.respondWith(() => new Response("y"))`,
        }),
      ),
    ).toBe("lib/worker.js");
    expect(
      await detectEdgeEntry(await app("plain", { "index.js": `fly.http.respondWith((r) => fetch(r))` })),
    ).toBe("index.js");
    expect(
      await detectEdgeEntry(
        await app("server", { "index.js": `require("http").createServer().listen(8080)` }),
      ),
    ).toBe(undefined);
  });

  it("recognises the three ways to register a handler", () => {
    expect(looksLikeEdgeEntry(`fly.http.respondWith(handler)`)).toBe(true);
    expect(
      looksLikeEdgeEntry(`export default { async fetch(request, env) { return new Response("") } }`),
    ).toBe(true);
    expect(looksLikeEdgeEntry(`const fetch = mount({}); export default { fetch };`)).toBe(true);
    expect(looksLikeEdgeEntry(`self.addEventListener('fetch', (e) => {})`)).toBe(true);
    expect(looksLikeEdgeEntry(`export default function main() { console.log("hi") }`)).toBe(false);
    expect(looksLikeEdgeEntry(`import express from "express"; express().listen(3000)`)).toBe(false);
  });
});

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";
import { bundleEdgeApp } from "../src/bundler.js";
import { MemoryEdgeHost } from "../src/memory-host.js";
import { EdgeRuntime } from "../src/runtime.js";

// @fly/image in an app, through the real runtime: the app's bytes cross to the host, sharp does the
// operations, and the new image comes back as the app's response.

const host = new MemoryEdgeHost(async () => {
  throw new Error("this app fetches nothing");
});
const runtime = new EdgeRuntime(host);
let dir: string | undefined;
afterAll(async () => {
  await runtime.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("@fly/image in an edge app", () => {
  it("resizes and watermarks an image the request carries, answering it as WebP", async () => {
    dir = await mkdtemp(join(tmpdir(), "edge-image-"));
    await writeFile(
      join(dir, "index.js"),
      `import { Image } from "@fly/image";
      export default {
        async fetch(request) {
          const bytes = await request.arrayBuffer();
          const mark = new Uint8Array(await (await new Image(bytes).resize(10, 10).png().toBuffer()).data);
          return new Image(bytes).grayscale().resize(64, 32).watermark(mark, { gravity: "northwest" }).webp({ quality: 80 }).toResponse({ headers: { "x-app": "img" } });
        },
      };`,
    );
    const { bundle } = await bundleEdgeApp(dir);
    await runtime.deploy("img", bundle, { appEnv: "production", vars: {} });
    const input = await sharp({ create: { width: 300, height: 200, channels: 3, background: "#ff8800" } })
      .png()
      .toBuffer();
    const res = await runtime.dispatch("img", {
      method: "POST",
      url: "http://img.test/",
      headers: [["content-type", "image/png"]],
      body: new Uint8Array(input),
    });
    expect(res.status).toBe(200);
    expect(res.headers).toContainEqual(["content-type", "image/webp"]);
    expect(res.headers).toContainEqual(["x-app", "img"]);
    const meta = await sharp(res.body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["webp", 64, 32]);
  });

  it("an operation the host refuses is an error the app can catch", async () => {
    await writeFile(
      join(dir as string, "index.js"),
      `import { Image } from "@fly/image";
      fly.http.respondWith(async (request) => {
        try {
          await new Image(await request.arrayBuffer()).resize(100000, 1).toBuffer();
          return new Response("resized");
        } catch (err) {
          return new Response("refused: " + err.message, { status: 422 });
        }
      });`,
    );
    const { bundle } = await bundleEdgeApp(dir as string);
    await runtime.deploy("img", bundle, { appEnv: "production", vars: {} });
    const res = await runtime.dispatch("img", {
      method: "POST",
      url: "http://img.test/",
      headers: [],
      body: new Uint8Array(
        await sharp({ create: { width: 4, height: 4, channels: 3, background: "#000" } })
          .png()
          .toBuffer(),
      ),
    });
    expect(res.status).toBe(422);
    expect(new TextDecoder().decode(res.body)).toMatch(/refused: .*width 100000/);
  });
});

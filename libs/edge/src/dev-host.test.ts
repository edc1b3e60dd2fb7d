import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EchoOrigin, type SeenRequest, startEchoOrigin } from "../test/echo-origin.js";
import { createDevHost, MemoryEdgeCache, networkFetch } from "./dev-host.js";

let origin: EchoOrigin;
beforeAll(async () => {
  origin = await startEchoOrigin();
});
afterAll(() => origin.close());

const text = (body: Uint8Array) => new TextDecoder().decode(body);

describe("networkFetch", () => {
  it("sends method, Host as given, repeated headers and the body; answers status, headers and body", async () => {
    const res = await networkFetch(
      {
        method: "PUT",
        url: `${origin.url}/a?b=1`,
        headers: [
          ["host", "blog.example"],
          ["x-tag", "one"],
          ["x-tag", "two"],
          ["content-length", "999"],
        ],
        body: new TextEncoder().encode("data"),
      },
      new AbortController().signal,
    );
    expect(res.status).toBe(200);
    expect(res.headers).toContainEqual(["content-type", "application/json"]);
    const seen = JSON.parse(text(res.body)) as SeenRequest;
    expect(seen).toMatchObject({ method: "PUT", path: "/a?b=1", body: "data" });
    expect(seen.headers.host).toBe("blog.example");
    expect(seen.headers["x-tag"]).toBe("one, two");
    expect(seen.headers["content-length"]).toBe("4");
  });

  it("neither follows redirects nor decodes a gzip body", async () => {
    const packed = gzipSync("hello");
    const server = createServer((req, res) => {
      if (req.url === "/old") res.writeHead(302, { location: "/new" }).end();
      else res.writeHead(200, { "content-encoding": "gzip", "content-length": packed.length }).end(packed);
    }).listen(0, "127.0.0.1");
    await once(server, "listening");
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const signal = new AbortController().signal;
      const moved = await networkFetch({ method: "GET", url: `${base}/old`, headers: [] }, signal);
      expect(moved.status).toBe(302);
      expect(moved.headers).toContainEqual(["location", "/new"]);
      const zipped = await networkFetch({ method: "GET", url: `${base}/z`, headers: [] }, signal);
      expect(Buffer.from(zipped.body).equals(packed)).toBe(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("rejects a URL that is not http(s), a refused connection and an aborted fetch", async () => {
    const signal = new AbortController().signal;
    await expect(
      networkFetch({ method: "GET", url: "file:///etc/passwd", headers: [] }, signal),
    ).rejects.toThrow(/cannot fetch file:/);
    const closed = await startEchoOrigin();
    await closed.close();
    await expect(networkFetch({ method: "GET", url: closed.url, headers: [] }, signal)).rejects.toThrow(
      /ECONNREFUSED/,
    );
    await expect(
      networkFetch({ method: "GET", url: origin.url, headers: [] }, AbortSignal.abort()),
    ).rejects.toThrow(/abort/i);
  });
});

describe("MemoryEdgeCache and the dev host", () => {
  it("keeps each app's keys apart and expires a key after its TTL", async () => {
    let now = 0;
    const cache = new MemoryEdgeCache(() => now);
    cache.set("a", "k", new Uint8Array([1]), 10);
    cache.set("b", "k", new Uint8Array([2]));
    expect(cache.get("a", "k")).toEqual(new Uint8Array([1]));
    expect(cache.get("b", "k")).toEqual(new Uint8Array([2]));
    now = 10_000;
    expect(cache.get("a", "k")).toBeUndefined();
    expect(cache.get("b", "k")).toEqual(new Uint8Array([2]));
    expect(cache.delete("b", "k")).toBe(true);
    expect(cache.delete("b", "k")).toBe(false);
  });

  it("the dev host's cache and log go through its parts", async () => {
    const lines: string[] = [];
    const host = createDevHost((app, level, message) => lines.push(`${app} ${level} ${message}`));
    await host.cacheSet("a", "k", new Uint8Array([7]));
    expect(await host.cacheGet("a", "k")).toEqual(new Uint8Array([7]));
    expect(await host.cacheGet("b", "k")).toBeUndefined();
    expect(await host.cacheDelete("a", "k")).toBe(true);
    host.log("a", "info", "hi");
    expect(lines).toEqual(["a info hi"]);
  });
});

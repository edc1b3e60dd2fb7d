import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EchoOrigin, type SeenRequest, startEchoOrigin } from "../test/echo-origin.js";
import { HttpFetchTimeoutError, httpFetch } from "./http-fetch.js";

let origin: EchoOrigin;
beforeAll(async () => {
  origin = await startEchoOrigin();
});
afterAll(() => origin.close());

const text = (body: Uint8Array) => new TextDecoder().decode(body);

describe("httpFetch", () => {
  it("sends method, Host as given, repeated headers and the body; answers status, headers and body", async () => {
    const res = await httpFetch(
      "app",
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
      const moved = await httpFetch("app", { method: "GET", url: `${base}/old`, headers: [] }, signal);
      expect(moved.status).toBe(302);
      expect(moved.headers).toContainEqual(["location", "/new"]);
      const zipped = await httpFetch("app", { method: "GET", url: `${base}/z`, headers: [] }, signal);
      expect(Buffer.from(zipped.body).equals(packed)).toBe(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("rejects a URL that is not http(s), a refused connection and an aborted fetch", async () => {
    const signal = new AbortController().signal;
    await expect(
      httpFetch("app", { method: "GET", url: "file:///etc/passwd", headers: [] }, signal),
    ).rejects.toThrow(/cannot fetch file:/);
    const closed = await startEchoOrigin();
    await closed.close();
    await expect(httpFetch("app", { method: "GET", url: closed.url, headers: [] }, signal)).rejects.toThrow(
      /ECONNREFUSED/,
    );
    await expect(
      httpFetch("app", { method: "GET", url: origin.url, headers: [] }, AbortSignal.abort()),
    ).rejects.toThrow(/abort/i);
  });

  it("cuts an origin that sends no head, or stalls in its body, at its timeouts", async () => {
    const server = createServer((req, res) => {
      if (req.url === "/stall-body") {
        res.writeHead(200, { "content-length": "1000" });
        res.write("part of it");
      }
      // Anything else: the head never comes.
    }).listen(0, "127.0.0.1");
    await once(server, "listening");
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const signal = new AbortController().signal;
      const options = { timeouts: { headMs: 200, totalMs: 400 } };
      await expect(
        httpFetch("app", { method: "GET", url: `${base}/no-head`, headers: [] }, signal, options),
      ).rejects.toThrow(/no response head within 200 ms/);
      const stalled = httpFetch(
        "app",
        { method: "GET", url: `${base}/stall-body`, headers: [] },
        signal,
        options,
      );
      await expect(stalled).rejects.toThrow(HttpFetchTimeoutError);
      await expect(stalled).rejects.toThrow(/not whole within 400 ms/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

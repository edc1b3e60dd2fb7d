import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EchoOrigin, type SeenRequest, startEchoOrigin } from "../test/echo-origin.js";
import { proxy, stripPrefix } from "./proxy.js";

let origin: EchoOrigin;
beforeAll(async () => {
  origin = await startEchoOrigin("blog");
});
afterAll(() => origin.close());

const seenBy = async (res: Response) => (await res.json()) as SeenRequest;

describe("proxy", () => {
  it("forwards method, path, query, headers and body, with Host the origin's and X-Forwarded-Host the client's", async () => {
    const res = await proxy(origin.url)(
      new Request("http://example.com/posts/1?draft=yes", {
        method: "POST",
        headers: { "content-type": "text/plain", "x-user": "ann" },
        body: "hello",
      }),
    );
    expect(res.status).toBe(200);
    const seen = await seenBy(res);
    expect(seen.method).toBe("POST");
    expect(seen.path).toBe("/posts/1?draft=yes");
    expect(seen.body).toBe("hello");
    expect(seen.headers.host).toBe(origin.host);
    expect(seen.headers["x-forwarded-host"]).toBe("example.com");
    expect(seen.headers["x-forwarded-proto"]).toBe("http");
    const behindTls = await seenBy(
      await proxy(origin.url)(
        new Request("http://example.com/", { headers: { "x-forwarded-proto": "https" } }),
      ),
    );
    expect(behindTls.headers["x-forwarded-proto"]).toBe("https");
    expect(seen.headers["x-user"]).toBe("ann");
  });

  it("rebases the path: stripPath taken off, then put under the origin's path and basePath", async () => {
    const send = proxy(`${origin.url}/v1/`, { basePath: "/blog", stripPath: "/news" });
    const seen = await seenBy(await send("http://example.com/news/today?x=1"));
    expect(seen.path).toBe("/v1/blog/today?x=1");
    const root = await seenBy(await send("http://example.com/news"));
    expect(root.path).toBe("/v1/blog/");
    // A path that does not start with stripPath at a segment is left whole.
    const other = await seenBy(await send("http://example.com/newsletter"));
    expect(other.path).toBe("/v1/blog/newsletter");
  });

  it("sets and removes the headers given in options", async () => {
    const send = proxy(origin.url, { headers: { "x-api-key": "k1", cookie: false } });
    const seen = await seenBy(await send(new Request("http://example.com/", { headers: { cookie: "a=b" } })));
    expect(seen.headers["x-api-key"]).toBe("k1");
    expect(seen.headers.cookie).toBeUndefined();
  });

  it("hands a redirect back to the client instead of following it", async () => {
    origin.status = (req) => (req.path === "/moved" ? 301 : 200);
    try {
      const res = await proxy(origin.url)("http://example.com/moved");
      expect(res.status).toBe(301);
    } finally {
      origin.status = () => 200;
    }
  });

  it("refuses an origin that is not http(s)", () => {
    expect(() => proxy("file:///etc/passwd")).toThrow(/not an http\(s\) URL/);
  });

  it("stripPrefix takes whole segments only", () => {
    expect(stripPrefix("/blog/a", "/blog")).toBe("/a");
    expect(stripPrefix("/blog", "/blog/")).toBe("/");
    expect(stripPrefix("/blogger", "/blog")).toBe("/blogger");
    expect(stripPrefix("/a", undefined)).toBe("/a");
  });
});

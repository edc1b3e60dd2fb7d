import { afterAll, describe, expect, it } from "vitest";
import { failure } from "../test/edge-error.js";
import { edgeBundleOf } from "./bundle-code.js";
import {
  EDGE_BODY_MAX_BYTES,
  EDGE_DEFAULT_LIMITS,
  type EdgeHttpRequest,
  type EdgeHttpResponse,
} from "./contract.js";
import { MemoryEdgeHost } from "./memory-host.js";
import { EdgeRuntime } from "./runtime.js";

const text = (res: EdgeHttpResponse) => new TextDecoder().decode(res.body);
const get = (url: string, headers: [string, string][] = []): EdgeHttpRequest => ({
  method: "GET",
  url,
  headers,
});
const PROD = { appEnv: "production" as const, vars: {} };

const upstreams: EdgeHttpRequest[] = [];
const host = new MemoryEdgeHost(async (app, req) => {
  upstreams.push(req);
  return {
    status: 201,
    statusText: "Created",
    headers: [["x-upstream", app]],
    body: new TextEncoder().encode(
      `${req.method} ${req.url} ${req.body ? new TextDecoder().decode(req.body) : ""}`,
    ),
  };
});
// Not a test of the CPU limit (isolation.test.ts is): a loaded machine must not stop these requests.
const runtime = new EdgeRuntime(host, { ...EDGE_DEFAULT_LIMITS, cpuMs: 2_000 });
afterAll(() => runtime.dispose());

describe("EdgeRuntime: the app's API", () => {
  it("serves fly.http.respondWith and export default { fetch } with env, app.env and request bodies", async () => {
    await runtime.deploy(
      "hello",
      edgeBundleOf(`fly.http.respondWith((req) => new Response("Hello World " + new URL(req.url).pathname))`),
      PROD,
    );
    const hello = await runtime.dispatch("hello", get("http://hello.test/there"));
    expect(hello.status).toBe(200);
    expect(text(hello)).toBe("Hello World /there");
    expect(hello.headers).toContainEqual(["content-type", "text/plain;charset=UTF-8"]);

    await runtime.deploy(
      "modern",
      edgeBundleOf(`export default {
        async fetch(request, env, ctx) {
          ctx.waitUntil(Promise.resolve());
          return Response.json({ env, appEnv: app.env, name: app.name, method: request.method,
            body: await request.text(), type: request.headers.get("content-type") }, { status: 202 });
        }
      }`),
      { appEnv: "development", vars: { GREETING: "hi", SECRET: "s3cret" } },
    );
    const res = await runtime.dispatch("modern", {
      method: "POST",
      url: "http://modern.test/",
      headers: [["content-type", "text/plain"]],
      body: new TextEncoder().encode("posted"),
    });
    expect(res.status).toBe(202);
    expect(JSON.parse(text(res))).toEqual({
      env: { GREETING: "hi", SECRET: "s3cret" },
      appEnv: "development",
      name: "modern",
      method: "POST",
      body: "posted",
      type: "text/plain",
    });
    expect(runtime.current("modern")).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("gives the web platform: Headers, URL, streams, TextEncoder, atob, crypto, timers, AbortController", async () => {
    await runtime.deploy(
      "platform",
      edgeBundleOf(`export default { async fetch(request) {
        const h = new Headers([["B", "2"], ["a", "1"], ["a", "3"], ["set-cookie", "x=1"], ["set-cookie", "y=2"]]);
        const url = new URL("/p/../q?x=1&y=%20z#f", "https://Example.COM:443");
        url.searchParams.append("w", "v w");
        const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("str")); c.enqueue(new TextEncoder().encode("eam")); c.close(); } });
        const fromStream = await new Response(stream).text();
        const reader = new Response("abc").body.getReader();
        const first = await reader.read();
        const cloned = new Request("http://a.test/x", { method: "post", body: "cl" });
        const copy = cloned.clone();
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc")));
        const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("k"), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
        const sig = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode("m"));
        const verified = await crypto.subtle.verify("HMAC", key, sig, new TextEncoder().encode("m"));
        const aes = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"]);
        const iv = crypto.getRandomValues(new Uint8Array(12));
        const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, aes, new TextEncoder().encode("secret"));
        const opened = new TextDecoder().decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv }, aes, sealed));
        const jwk = await crypto.subtle.exportKey("jwk", aes);
        const waited = await new Promise((resolve) => setTimeout(() => resolve("timer"), 5));
        const controller = new AbortController();
        controller.abort();
        return Response.json({
          entries: [...h], getA: h.get("a"), cookies: h.getSetCookie(),
          href: url.href, host: url.host, search: [...url.searchParams],
          fromStream, first: new TextDecoder().decode(first.value),
          clones: [await cloned.text(), await copy.text(), cloned.method],
          digest: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
          verified, opened, jwkKty: jwk.kty, keyType: aes.type, keyClass: String(key),
          uuid: crypto.randomUUID(), b64: btoa("hi"), unb64: atob("aGk="), waited, aborted: controller.signal.aborted,
          redirect: Response.redirect("https://x.test/a", 301).headers.get("location"),
        });
      } }`),
      PROD,
    );
    const body = JSON.parse(text(await runtime.dispatch("platform", get("http://platform.test/"))));
    expect(body).toMatchObject({
      entries: [
        ["a", "1, 3"],
        ["b", "2"],
        ["set-cookie", "x=1"],
        ["set-cookie", "y=2"],
      ],
      getA: "1, 3",
      cookies: ["x=1", "y=2"],
      // As the URL standard (and Node's URL) says: appending re-serialises the query.
      href: "https://example.com/q?x=1&y=+z&w=v+w#f",
      host: "example.com",
      search: [
        ["x", "1"],
        ["y", " z"],
        ["w", "v w"],
      ],
      fromStream: "stream",
      first: "abc",
      clones: ["cl", "cl", "POST"],
      digest: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      verified: true,
      opened: "secret",
      jwkKty: "oct",
      keyType: "secret",
      keyClass: "[object CryptoKey]",
      b64: "aGk=",
      unb64: "hi",
      waited: "timer",
      aborted: true,
      redirect: "https://x.test/a",
    });
    expect(body.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("keeps the Fetch standard's rules for Request, Response and Headers", async () => {
    await runtime.deploy(
      "rules",
      edgeBundleOf(`export default { async fetch() {
        const threw = (f) => { try { f(); return "no"; } catch (e) { return e.name; } };
        const used = new Response("once");
        await used.text();
        const streamed = new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("s")); c.close(); } }));
        const twin = streamed.clone();
        const h = new Headers({ "X-A": " padded " });
        h.set("x-a", "set"); h.append("x-b", "1"); h.delete("X-B");
        const controller = new AbortController();
        controller.abort();
        const aborted = await fetch("http://x.internal/", { signal: controller.signal }).then(() => "fetched", (e) => e.name);
        return Response.json({
          getWithBody: threw(() => new Request("http://a.test/", { body: "x" })),
          badStatus: threw(() => new Response("x", { status: 99 })),
          bodyOn204: threw(() => new Response("x", { status: 204 })),
          badHeader: threw(() => new Headers({ "bad name": "x" })),
          relativeUrl: threw(() => new Request("/relative")),
          usedAgain: await used.text().then(() => "read", (e) => e.name),
          bodyUsed: used.bodyUsed,
          clones: [await streamed.text(), await twin.text()],
          headers: [...h], method: new Request("http://a.test/", { method: "patch" }).method,
          aborted,
        });
      } }`),
      PROD,
    );
    expect(JSON.parse(text(await runtime.dispatch("rules", get("http://rules.test/"))))).toEqual({
      getWithBody: "TypeError",
      badStatus: "RangeError",
      bodyOn204: "TypeError",
      badHeader: "TypeError",
      relativeUrl: "TypeError",
      usedAgain: "TypeError",
      bodyUsed: true,
      clones: ["s", "s"],
      headers: [["x-a", "set"]],
      method: "patch",
      aborted: "AbortError",
    });
    const big = new Uint8Array(EDGE_BODY_MAX_BYTES + 1);
    const tooBig = await failure(
      runtime.dispatch("rules", { ...get("http://rules.test/"), method: "POST", body: big }),
    );
    expect(tooBig.status).toBe(413);
    await runtime.deploy("errorful", edgeBundleOf(`fly.http.respondWith(() => Response.error())`), PROD);
    expect((await failure(runtime.dispatch("errorful", get("http://e.test/")))).code).toBe("bad_response");
  });

  it("fetches through the host, logs console lines to it, and keeps fly.cache per app", async () => {
    const code = `fly.http.respondWith(async (req) => {
      const u = new URL(req.url);
      if (u.pathname === "/fetch") {
        const r = await fetch("http://api.internal/x", { method: "PUT", body: "up", headers: { "x-b": "1" } });
        console.log("fetched", r.status, { ok: r.ok });
        return new Response(await r.text(), { status: r.status, headers: { "x-up": r.headers.get("x-upstream") } });
      }
      if (u.pathname === "/set") { await fly.cache.set("k", u.searchParams.get("v"), 60); await fly.cache.set("b", new Uint8Array([1, 2])); return new Response("set"); }
      const bytes = await fly.cache.get("b");
      return Response.json({ k: await fly.cache.getString("k"), b: bytes && [...new Uint8Array(bytes)], deleted: await fly.cache.del("missing") });
    })`;
    await runtime.deploy("cache-a", edgeBundleOf(code), PROD);
    await runtime.deploy("cache-b", edgeBundleOf(code), PROD);
    const fetched = await runtime.dispatch("cache-a", get("http://a.test/fetch"));
    expect(fetched.status).toBe(201);
    expect(text(fetched)).toBe("PUT http://api.internal/x up");
    expect(fetched.headers).toContainEqual(["x-up", "cache-a"]);
    expect(upstreams.at(-1)?.headers).toContainEqual(["x-b", "1"]);
    expect(host.logs).toContainEqual({ app: "cache-a", level: "info", message: 'fetched 201 {"ok":true}' });

    await runtime.dispatch("cache-a", get("http://a.test/set?v=from-a"));
    expect(JSON.parse(text(await runtime.dispatch("cache-a", get("http://a.test/get"))))).toEqual({
      k: "from-a",
      b: [1, 2],
      deleted: false,
    });
    expect(JSON.parse(text(await runtime.dispatch("cache-b", get("http://b.test/get"))))).toEqual({
      k: null,
      b: null,
      deleted: false,
    });
  });

  it("answers EdgeErrors: uncaught, no_handler, bad_response, compile, not_deployed", async () => {
    await runtime.deploy(
      "throws",
      edgeBundleOf(`fly.http.respondWith(() => { throw new Error("boom") })`),
      PROD,
    );
    const thrown = await failure(runtime.dispatch("throws", get("http://t.test/")));
    expect([thrown.code, thrown.status]).toEqual(["uncaught", 500]);
    expect(thrown.message).toContain("boom");

    await runtime.deploy("silent", edgeBundleOf(`globalThis.x = 1;`), PROD);
    expect((await failure(runtime.dispatch("silent", get("http://s.test/")))).code).toBe("no_handler");

    await runtime.deploy("bad", edgeBundleOf(`fly.http.respondWith(() => "a string")`), PROD);
    expect((await failure(runtime.dispatch("bad", get("http://b.test/")))).code).toBe("bad_response");

    expect((await failure(runtime.deploy("broken", edgeBundleOf("fly.http.respondWith(("), PROD))).code).toBe(
      "compile",
    );
    expect(
      (await failure(runtime.deploy("top-throws", edgeBundleOf(`throw new Error("at load")`), PROD))).code,
    ).toBe("compile");
    expect(runtime.current("broken")).toBeUndefined();
    const missing = await failure(runtime.dispatch("nobody", get("http://n.test/")));
    expect([missing.code, missing.status]).toEqual(["not_deployed", 404]);
  });

  it("answers wall_limit to a request that waits too long, and the app serves on", async () => {
    await runtime.deploy(
      "waiter",
      edgeBundleOf(
        `fly.http.respondWith((req) => req.url.endsWith("/forever") ? new Promise(() => {}) : new Response("here"))`,
      ),
      PROD,
      { wallMs: 200 },
    );
    const error = await failure(runtime.dispatch("waiter", get("http://w.test/forever")));
    expect([error.code, error.status]).toEqual(["wall_limit", 503]);
    expect(text(await runtime.dispatch("waiter", get("http://w.test/")))).toBe("here");
  });

  it("swaps a deploy in at once, keeps serving the old code until then, and removes an app", async () => {
    await runtime.deploy("swap", edgeBundleOf(`fly.http.respondWith(() => new Response("v1"))`), PROD);
    const v1 = runtime.current("swap");
    const failed = runtime.deploy("swap", edgeBundleOf("syntax error here"), PROD);
    expect(text(await runtime.dispatch("swap", get("http://s.test/")))).toBe("v1");
    await failure(failed);
    expect(runtime.current("swap")).toBe(v1);
    await runtime.deploy("swap", edgeBundleOf(`fly.http.respondWith(() => new Response("v2"))`), PROD);
    expect(runtime.current("swap")).not.toBe(v1);
    expect(text(await runtime.dispatch("swap", get("http://s.test/")))).toBe("v2");
    runtime.remove("swap");
    expect((await failure(runtime.dispatch("swap", get("http://s.test/")))).code).toBe("not_deployed");
    // A removal while a deploy loads is the later word: the deploy does not install.
    const late = runtime.deploy("swap", edgeBundleOf(`fly.http.respondWith(() => new Response("v3"))`), PROD);
    runtime.remove("swap");
    await late;
    expect(runtime.current("swap")).toBeUndefined();
    expect((await failure(runtime.dispatch("swap", get("http://s.test/")))).code).toBe("not_deployed");
  });
});

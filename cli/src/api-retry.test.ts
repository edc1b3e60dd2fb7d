import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ApiClient, ApiError, retryAfterOf } from "./api.js";

let server: Server | undefined;
afterEach(() => server?.close());

/** A server answering each request with the next of `answers` (status, Retry-After); counts requests. */
async function serve(
  answers: Array<[number, string | undefined]>,
): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  server = createServer((req, res) => {
    req.resume();
    const [status, retryAfter] = answers[Math.min(hits++, answers.length - 1)] ?? [500, undefined];
    res.writeHead(status, {
      "content-type": "application/json",
      ...(retryAfter !== undefined ? { "retry-after": retryAfter } : {}),
    });
    res.end(
      JSON.stringify(
        status === 200 ? { ok: true } : { error: "rate limit exceeded", status: "rate_limited" },
      ),
    );
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits };
}

describe("ApiClient on 429", () => {
  it("sends the call again once Retry-After has passed", async () => {
    const s = await serve([
      [429, "0"],
      [429, "0"],
      [200, undefined],
    ]);
    const api = new ApiClient({ apiUrl: s.url, token: "t" });
    await expect(api.request("POST", "/apps", { body: { app_name: "a" } })).resolves.toEqual({ ok: true });
    expect(s.hits()).toBe(3);
  });

  it("answers the 429 when Retry-After is missing or longer than it waits", async () => {
    for (const retryAfter of [undefined, "3600", "soon"]) {
      const s = await serve([[429, retryAfter]]);
      const api = new ApiClient({ apiUrl: s.url, token: "t" });
      const err = await api.request("POST", "/apps", { body: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).httpStatus).toBe(429);
      expect(s.hits()).toBe(1);
      server?.close();
    }
  });

  it("reads Retry-After as whole seconds", () => {
    const h = (v: string) => ({ headers: new Headers({ "retry-after": v }) });
    expect(retryAfterOf(h("2"))).toBe(2000);
    expect(retryAfterOf(h("0"))).toBe(100);
    expect(retryAfterOf(h("Wed, 21 Oct 2026 07:28:00 GMT"))).toBeUndefined();
    expect(retryAfterOf({ headers: new Headers() })).toBeUndefined();
  });
});

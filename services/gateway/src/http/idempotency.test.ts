import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { Claim, IdempotencyStore, RecordedAnswer } from "../idempotency/kv-idempotency.js";
import { type ApiEnv, requestContext } from "./context.js";
import { errorHandler } from "./error-handler.js";
import { idempotency } from "./idempotency.js";

/** Answers every claim with `next`, and records what it was asked and what was finished. */
class ScriptedStore implements IdempotencyStore {
  readonly asked: Array<{ recordKey: string; fingerprint: string }> = [];
  readonly finished: Array<RecordedAnswer | undefined> = [];
  constructor(public next: Claim["kind"] | "throw" = "acting") {}

  async claim(recordKey: string, fingerprint: string): Promise<Claim> {
    this.asked.push({ recordKey, fingerprint });
    switch (this.next) {
      case "throw":
        throw new Error("no responders");
      case "replay":
        return {
          kind: "replay",
          answer: { status: 201, body: '{"id":"first"}', contentType: "application/json" },
        };
      case "mismatch":
        return { kind: "mismatch" };
      case "busy":
        return { kind: "busy" };
      case "acting":
        return {
          kind: "acting",
          operationId: "op-1",
          takenOver: false,
          resumed: false,
          finish: async (answer) => void this.finished.push(answer),
        };
    }
  }
}

function app(store: IdempotencyStore, tokenId = "tok"): Hono<ApiEnv> {
  const a = new Hono<ApiEnv>();
  a.onError(errorHandler(createLogger("idempotency-test", { level: "silent" })));
  a.use("/v1/*", async (c, next) => {
    c.set("principal", {
      tokenId,
      kind: "org",
      org: "acme",
      apps: undefined,
      readOnly: false,
      execOnly: false,
      expiresAt: undefined,
    });
    await next();
  });
  a.use("/v1/*", idempotency(store, createLogger("idempotency-test", { level: "silent" })));
  a.post("/v1/apps/:app_name/machines", async (c) => {
    const body = (await c.req.json()) as { fail?: number; throw?: boolean };
    if (body.throw) throw new Error("boom");
    if (body.fail) return c.json({ error: "no", status: "x" }, body.fail as 409);
    return c.json({ operation: requestContext(c).operationId ?? null });
  });
  a.post("/v1/apps/:app_name/secrets", (c) => c.json({ operation: requestContext(c).operationId ?? null }));
  return a;
}

const post = (a: Hono<ApiEnv>, path: string, body: unknown, key?: string) =>
  a.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { "idempotency-key": key }) },
    body: JSON.stringify(body),
  });

describe("the idempotency middleware", () => {
  it("acts once with the key's operation id and records a 2xx answer", async () => {
    const store = new ScriptedStore();
    const res = await post(app(store), "/v1/apps/web/machines", { a: 1 }, "k1");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ operation: "op-1" });
    expect(store.finished).toEqual([
      { status: 200, body: '{"operation":"op-1"}', contentType: "application/json" },
    ]);
  });

  it("frees the key after a 409, a 5xx or a thrown error, and keeps a 4xx a retry would repeat", async () => {
    const store = new ScriptedStore();
    const a = app(store);
    expect((await post(a, "/v1/apps/web/machines", { fail: 409 }, "k")).status).toBe(409);
    expect((await post(a, "/v1/apps/web/machines", { throw: true }, "k")).status).toBe(500);
    expect((await post(a, "/v1/apps/web/machines", { fail: 404 }, "k")).status).toBe(404);
    expect(store.finished.map((f) => f?.status)).toEqual([undefined, undefined, 404]);
  });

  it("replays a recorded answer with Idempotent-Replayed, without running the route", async () => {
    const res = await post(app(new ScriptedStore("replay")), "/v1/apps/web/machines", { throw: true }, "k");
    expect(res.status).toBe(201);
    expect(res.headers.get("idempotent-replayed")).toBe("true");
    expect(await res.json()).toEqual({ id: "first" });
  });

  it("answers a reused key 422, a key in progress 409, an unreadable store 503, in Fly's error body", async () => {
    const cases = [
      ["mismatch", 422, "idempotency_key_reused"],
      ["busy", 409, "conflict"],
      ["throw", 503, "unavailable"],
    ] as const;
    for (const [next, status, code] of cases) {
      const res = await post(app(new ScriptedStore(next)), "/v1/apps/web/machines", {}, "k");
      expect(res.status).toBe(status);
      expect(await res.json()).toEqual({ status: code, error: expect.any(String) });
    }
  });

  it("leaves requests without a key, and routes it does not cover, alone", async () => {
    const store = new ScriptedStore();
    const a = app(store);
    expect(await (await post(a, "/v1/apps/web/machines", {})).json()).toEqual({ operation: null });
    expect(await (await post(a, "/v1/apps/web/secrets", {}, "k")).json()).toEqual({ operation: null });
    expect(store.asked).toEqual([]);
  });

  it("refuses a malformed key with a 400 before asking the store", async () => {
    const store = new ScriptedStore();
    const res = await post(app(store), "/v1/apps/web/machines", {}, "a key");
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ status: "invalid_argument" });
    expect(store.asked).toEqual([]);
  });

  it("names the caller's record and the request's fingerprint: another token, another record", async () => {
    const store = new ScriptedStore();
    await post(app(store, "tok_a"), "/v1/apps/web/machines", { a: 1 }, "k");
    await post(app(store, "tok_b"), "/v1/apps/web/machines", { a: 1 }, "k");
    await post(app(store, "tok_a"), "/v1/apps/web/machines", { a: 2 }, "k");
    const [a, b, c] = store.asked;
    expect(a?.recordKey).not.toBe(b?.recordKey);
    expect(a?.fingerprint).toBe(b?.fingerprint);
    expect(c?.recordKey).toBe(a?.recordKey);
    expect(c?.fingerprint).not.toBe(a?.fingerprint);
  });
});

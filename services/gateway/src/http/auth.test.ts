import { randomBytes } from "node:crypto";
import { attenuateToken, mintToken } from "@hangar/auth";
import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { presentedToken, tokenAuth } from "./auth.js";
import type { ApiEnv } from "./context.js";
import { errorHandler } from "./error-handler.js";

const key = new Uint8Array(randomBytes(32));
const NOW = Date.UTC(2026, 0, 1);
const revoked = new Set(["tok_revoked"]);
const app = new Hono<ApiEnv>()
  .use(
    tokenAuth({
      key,
      directory: { orgOf: () => "acme", exists: () => true, limitsOf: () => ({}) },
      isRevoked: (id) => revoked.has(id),
      now: () => NOW,
    }),
  )
  .get("/", (c) => c.json({ token_id: c.get("principal").tokenId, org: c.get("principal").org ?? null }))
  .onError(errorHandler(createLogger("test", { level: "silent" })));

const get = (authorization?: string) =>
  app.request("/", { headers: authorization === undefined ? {} : { authorization } });

const admin = mintToken(key, { id: "tok_admin", kind: "org", org: "acme" });

describe("tokenAuth", () => {
  it("lets a valid token through as Bearer or FlyV1, any casing, and sets the principal", async () => {
    for (const header of [`Bearer ${admin}`, `bearer ${admin}`, `FlyV1 ${admin}`, `Bearer   ${admin} `]) {
      const res = await get(header);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ token_id: "tok_admin", org: "acme" });
    }
  });

  it("answers 401 unauthenticated in Fly's shape when the header is missing", async () => {
    const res = await get();
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="hangar"');
    expect(await res.json()).toEqual({
      error: "missing Authorization: Bearer <token> header",
      status: "unauthenticated",
    });
  });

  it("refuses malformed, forged, other-key, expired and revoked tokens, saying why", async () => {
    const forged = `${admin.slice(0, -3)}${admin.endsWith("A") ? "B" : "A"}${admin.slice(-2)}`;
    const cases: [string, RegExp][] = [
      ["Bearer wrong", /^malformed token/],
      [
        `Bearer ${mintToken(new Uint8Array(randomBytes(32)), { id: "x", kind: "operator" })}`,
        /^invalid token/,
      ],
      [`Bearer ${forged}`, /token/],
      [`Bearer ${attenuateToken(admin, { expiresAt: NOW })}`, /^expired token/],
      [`Bearer ${mintToken(key, { id: "tok_revoked", kind: "org", org: "acme" })}`, /was revoked/],
      [`Basic ${btoa(`x:${admin}`)}`, /unsupported Authorization header/],
      ["Bearer", /unsupported Authorization header/],
    ];
    for (const [header, message] of cases) {
      const res = await get(header);
      expect(res.status, header).toBe(401);
      const body = (await res.json()) as { error: string; status: string };
      expect(body.status).toBe("unauthenticated");
      expect(body.error).toMatch(message);
    }
  });
});

describe("presentedToken", () => {
  it("reads the Basic password only where Basic is allowed", () => {
    const basic = `Basic ${btoa("anyone:hm2_abc")}`;
    expect(presentedToken(basic, true)).toBe("hm2_abc");
    expect(presentedToken(basic, false)).toBeUndefined();
    expect(presentedToken("Bearer hm2_abc", true)).toBe("hm2_abc");
    expect(presentedToken(`Basic ${btoa("no-colon")}`, true)).toBeUndefined();
  });
});

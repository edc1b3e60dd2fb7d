import { describe, expect, it } from "vitest";
import { createApi } from "../http/api.js";
import {
  canonicalJson,
  IDEMPOTENT_ROUTES,
  isIdempotentRoute,
  isRecordedStatus,
  isValidIdempotencyKey,
  operationIdOf,
  recordKeyOf,
  requestFingerprint,
} from "./keys.js";

describe("idempotency keys", () => {
  it("accepts 1 to 255 printable ASCII characters, nothing else", () => {
    expect(isValidIdempotencyKey("8e03978e-40d5-43e8-bc93-6894a57f9324")).toBe(true);
    expect(isValidIdempotencyKey("x".repeat(255))).toBe(true);
    expect(isValidIdempotencyKey("")).toBe(false);
    expect(isValidIdempotencyKey("x".repeat(256))).toBe(false);
    expect(isValidIdempotencyKey("with space")).toBe(false);
    expect(isValidIdempotencyKey("clé")).toBe(false);
  });

  it("are scoped to the caller: another token or another org names another record", () => {
    // An attenuated token keeps its parent's id: the credential tells them apart.
    expect(recordKeyOf({ org: "acme", tokenId: "tok_a", credential: "Bearer child" }, "k1")).not.toBe(
      recordKeyOf({ org: "acme", tokenId: "tok_a", credential: "Bearer t" }, "k1"),
    );
    const mine = recordKeyOf({ org: "acme", tokenId: "tok_a", credential: "Bearer t" }, "k1");
    expect(recordKeyOf({ org: "acme", tokenId: "tok_a", credential: "Bearer t" }, "k1")).toBe(mine);
    expect(recordKeyOf({ org: "acme", tokenId: "tok_b", credential: "Bearer t" }, "k1")).not.toBe(mine);
    expect(recordKeyOf({ org: "other", tokenId: "tok_a", credential: "Bearer t" }, "k1")).not.toBe(mine);
    expect(recordKeyOf({ org: undefined, tokenId: "tok_a", credential: "Bearer t" }, "k1")).not.toBe(mine);
    expect(recordKeyOf({ org: "acme", tokenId: "tok_a", credential: "Bearer t" }, "k2")).not.toBe(mine);
    // A separator inside a field cannot make two scopes meet.
    expect(recordKeyOf({ org: "a", tokenId: "b\0c", credential: "Bearer t" }, "k")).not.toBe(
      recordKeyOf({ org: "a\0b", tokenId: "c", credential: "Bearer t" }, "k"),
    );
    expect(mine).toMatch(/^[0-9a-f]{64}$/);
  });

  it("fingerprint a JSON body by its content, anything else by its bytes", () => {
    const a = requestFingerprint(
      "POST",
      "/v1/apps/web/machines",
      '{"region":"ams","config":{"image":"nginx","env":{"A":"1"}}}',
    );
    const reordered = requestFingerprint(
      "POST",
      "/v1/apps/web/machines",
      '{ "config": { "env": {"A":"1"}, "image": "nginx" }, "region": "ams" }',
    );
    expect(reordered).toBe(a);
    expect(
      requestFingerprint(
        "POST",
        "/v1/apps/web/machines",
        '{"region":"fra","config":{"image":"nginx","env":{"A":"1"}}}',
      ),
    ).not.toBe(a);
    expect(
      requestFingerprint(
        "POST",
        "/v1/apps/shop/machines",
        '{"region":"ams","config":{"image":"nginx","env":{"A":"1"}}}',
      ),
    ).not.toBe(a);
    expect(requestFingerprint("DELETE", "/v1/apps/web/machines/m1", "")).not.toBe(
      requestFingerprint("DELETE", "/v1/apps/web/machines/m1?force=true", ""),
    );
    expect(requestFingerprint("POST", "/x", "not json")).not.toBe(
      requestFingerprint("POST", "/x", "not  json"),
    );
    expect(canonicalJson({ b: [2, { d: 1, c: null }], a: "x", u: undefined })).toBe(
      '{"a":"x","b":[2,{"c":null,"d":1}]}',
    );
  });

  it("are honoured on routes of the API only", () => {
    const api = createApi({
      backend: {} as never,
      auth: {} as never,
      volumes: {} as never,
      releases: {} as never,
    });
    const routes = new Set(api.routes.map((r) => `${r.method} ${r.path}`));
    for (const { method, path } of IDEMPOTENT_ROUTES) expect(routes).toContain(`${method} ${path}`);
  });

  it("cover the mutations whose backends derive what they make, and nothing else", () => {
    expect(isIdempotentRoute("POST", "/v1/apps")).toBe(true);
    expect(isIdempotentRoute("POST", "/v1/apps/web/machines")).toBe(true);
    expect(isIdempotentRoute("POST", "/v1/apps/web/machines/")).toBe(true);
    expect(isIdempotentRoute("POST", "/v1/apps/web/machines/m1")).toBe(true);
    expect(isIdempotentRoute("DELETE", "/v1/apps/web/machines/m1")).toBe(true);
    for (const action of ["start", "stop", "restart", "suspend"])
      expect(isIdempotentRoute("POST", `/v1/apps/web/machines/m1/${action}`)).toBe(true);
    expect(isIdempotentRoute("POST", "/v1/apps/web/volumes")).toBe(true);
    expect(isIdempotentRoute("GET", "/v1/apps/web/machines")).toBe(false);
    expect(isIdempotentRoute("POST", "/v1/apps/web/machines/m1/exec")).toBe(false);
    expect(isIdempotentRoute("POST", "/v1/apps/web/secrets")).toBe(false);
    expect(isIdempotentRoute("POST", "/v1/apps/web/machines/m1/start/x")).toBe(false);
  });

  it("keep successes and refusals a retry would repeat, not 'come back later' answers", () => {
    for (const s of [200, 201, 204, 400, 404, 412, 422]) expect(isRecordedStatus(s)).toBe(true);
    for (const s of [401, 403, 408, 409, 429, 500, 503, 302]) expect(isRecordedStatus(s)).toBe(false);
    // A 422 that says "no room now" passes; one of bad input is the answer.
    expect(isRecordedStatus(422, "insufficient_capacity")).toBe(false);
    expect(isRecordedStatus(422, "idempotency_key_reused")).toBe(true);
  });

  it("derive one operation id per record and attempt nonce", () => {
    expect(operationIdOf("r", "n1")).toBe(operationIdOf("r", "n1"));
    expect(operationIdOf("r", "n1")).not.toBe(operationIdOf("r", "n2"));
    expect(operationIdOf("r", "n1")).toMatch(/^[0-9a-f]{32}$/);
  });
});

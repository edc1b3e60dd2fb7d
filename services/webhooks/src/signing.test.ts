import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { newSigningSecret, SECRET_PREFIX, signatureHeader } from "./signing.js";

describe("delivery signatures", () => {
  it("is t=<seconds>,v1=<HMAC-SHA256 of '<t>.<body>' keyed by the secret>", () => {
    const body = '{"id":"7","type":"machine.started"}';
    const header = signatureHeader("whsec_test", body, 1_700_000_000);
    const expected = createHmac("sha256", "whsec_test").update(`1700000000.${body}`).digest("hex");
    expect(header).toBe(`t=1700000000,v1=${expected}`);
  });

  it("changes with the timestamp, the body and the secret", () => {
    const a = signatureHeader("whsec_a", "{}", 1);
    expect(signatureHeader("whsec_a", "{}", 2).split(",")[1]).not.toBe(a.split(",")[1]);
    expect(signatureHeader("whsec_a", "{ }", 1)).not.toBe(a);
    expect(signatureHeader("whsec_b", "{}", 1)).not.toBe(a);
  });

  it("makes a different 32-byte secret each time", () => {
    const s = newSigningSecret();
    expect(s.startsWith(SECRET_PREFIX)).toBe(true);
    expect(Buffer.from(s.slice(SECRET_PREFIX.length), "base64url")).toHaveLength(32);
    expect(newSigningSecret()).not.toBe(s);
  });
});

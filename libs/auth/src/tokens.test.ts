import { randomBytes } from "node:crypto";
import { newMacaroon } from "macaroon";
import { describe, expect, it } from "vitest";
import {
  attenuateToken,
  MAX_CAVEATS,
  MAX_EXPIRES_AT,
  MAX_TOKEN_LENGTH,
  mintToken,
  TOKEN_PREFIX,
  TokenError,
  type TokenErrorReason,
  verifyToken,
} from "./tokens.js";

const key = new Uint8Array(randomBytes(32));
const NOW = Date.UTC(2026, 0, 1);

function refusal(fn: () => unknown): TokenErrorReason {
  try {
    fn();
  } catch (err) {
    if (err instanceof TokenError) return err.reason;
    throw err;
  }
  throw new Error("expected a TokenError");
}

const encode = (json: object): string =>
  TOKEN_PREFIX + Buffer.from(JSON.stringify(json)).toString("base64url");
const jsonOf = (token: string) =>
  JSON.parse(Buffer.from(token.slice(TOKEN_PREFIX.length), "base64url").toString());

describe("mintToken / verifyToken", () => {
  it("reads back each kind", () => {
    const op = verifyToken(key, mintToken(key, { id: "t-op", kind: "operator" }), NOW);
    expect(op).toEqual({
      tokenId: "t-op",
      kind: "operator",
      org: undefined,
      apps: undefined,
      readOnly: false,
      execOnly: false,
      expiresAt: undefined,
    });
    const org = verifyToken(key, mintToken(key, { id: "t-org", kind: "org", org: "acme" }), NOW);
    expect(org).toMatchObject({ kind: "org", org: "acme", apps: undefined, readOnly: false });
    const deploy = verifyToken(
      key,
      mintToken(key, { id: "t-d", kind: "deploy", org: "acme", apps: ["web"] }),
      NOW,
    );
    expect(deploy).toMatchObject({ kind: "deploy", org: "acme", apps: new Set(["web"]) });
    const ro = verifyToken(key, mintToken(key, { id: "t-r", kind: "readonly", org: "acme" }), NOW);
    expect(ro).toMatchObject({ kind: "readonly", readOnly: true, execOnly: false });
    const ex = verifyToken(
      key,
      mintToken(key, { id: "t-x", kind: "machine-exec", org: "acme", apps: ["web"] }),
      NOW,
    );
    expect(ex).toMatchObject({ kind: "machine-exec", execOnly: true, apps: new Set(["web"]) });
  });

  it("refuses to mint what cannot be verified", () => {
    expect(() => mintToken(key, { id: "a", kind: "org" })).toThrow(/no org/);
    expect(() => mintToken(key, { id: "a", kind: "operator", org: "acme" })).toThrow(/no org/);
    expect(() => mintToken(key, { id: "a", kind: "deploy", org: "acme" })).toThrow(/apps/);
    expect(() => mintToken(key, { id: "a b", kind: "operator" })).toThrow(/token id/);
    expect(() => mintToken(key, { id: "a", kind: "org", org: "Acme Corp" })).toThrow(/not a valid name/);
  });

  it("honours the expiry caveat", () => {
    const token = mintToken(key, { id: "t", kind: "org", org: "acme", expiresAt: NOW + 1000 });
    expect(verifyToken(key, token, NOW).expiresAt).toBe(NOW + 1000);
    // Cached after the first verification, yet the expiry is compared with the clock on every use.
    expect(refusal(() => verifyToken(key, token, NOW + 1000))).toBe("expired");
  });
});

describe("attenuateToken", () => {
  const admin = mintToken(key, { id: "t-admin", kind: "org", org: "acme" });

  it("narrows apps, and several apps caveats intersect", () => {
    const two = attenuateToken(admin, { apps: ["web", "api"] });
    expect(verifyToken(key, two, NOW).apps).toEqual(new Set(["web", "api"]));
    const one = attenuateToken(two, { apps: ["api", "worker"] });
    expect(verifyToken(key, one, NOW).apps).toEqual(new Set(["api"]));
    // An app outside the first caveat cannot be added back.
    const none = attenuateToken(two, { apps: ["worker"] });
    expect(verifyToken(key, none, NOW).apps).toEqual(new Set());
  });

  it("adds read-only, exec-only and the earliest expiry", () => {
    const t = attenuateToken(
      attenuateToken(admin, { readOnly: true, execOnly: true, expiresAt: NOW + 5000 }),
      { expiresAt: NOW + 9000 },
    );
    const p = verifyToken(key, t, NOW);
    expect(p).toMatchObject({ tokenId: "t-admin", kind: "org", org: "acme", readOnly: true, execOnly: true });
    expect(p.expiresAt).toBe(NOW + 5000);
    expect(refusal(() => verifyToken(key, t, NOW + 6000))).toBe("expired");
  });

  it("cannot loosen: a stripped or reordered caveat breaks the signature", () => {
    const narrowed = jsonOf(attenuateToken(admin, { readOnly: true }));
    expect(narrowed.c).toEqual([{ i: "kind = org" }, { i: "org = acme" }, { i: "read-only" }]);
    const stripped = { ...narrowed, c: narrowed.c.slice(0, 2) };
    expect(refusal(() => verifyToken(key, encode(stripped), NOW))).toBe("bad_signature");
    const reordered = { ...narrowed, c: [narrowed.c[0], narrowed.c[2], narrowed.c[1]] };
    expect(refusal(() => verifyToken(key, encode(reordered), NOW))).toBe("bad_signature");
  });
});

describe("verifyToken refuses", () => {
  it("a forged signature or another key", () => {
    const token = mintToken(key, { id: "t", kind: "org", org: "acme" });
    const json = jsonOf(token);
    const sig = Buffer.from(json.s64, "base64url");
    sig[0] = (sig[0] as number) ^ 1;
    expect(refusal(() => verifyToken(key, encode({ ...json, s64: sig.toString("base64url") }), NOW))).toBe(
      "bad_signature",
    );
    expect(refusal(() => verifyToken(new Uint8Array(randomBytes(32)), token, NOW))).toBe("bad_signature");
  });

  it("an unknown caveat, even when correctly signed", () => {
    const m = newMacaroon({ identifier: "t", rootKey: key });
    m.addFirstPartyCaveat("kind = org");
    m.addFirstPartyCaveat("org = acme");
    m.addFirstPartyCaveat("ip = 10.0.0.1");
    expect(refusal(() => verifyToken(key, encode(m.exportJSON()), NOW))).toBe("unknown_caveat");
    const noKind = newMacaroon({ identifier: "t2", rootKey: key });
    noKind.addFirstPartyCaveat("org = acme");
    expect(refusal(() => verifyToken(key, encode(noKind.exportJSON()), NOW))).toBe("unknown_caveat");
  });

  it("an expiry caveat past the year 9999, signed or attenuated offline, as malformed", () => {
    // 9e15 ms is past what a Date can hold: rendering it threw a RangeError (a 500 from whoami).
    for (const at of ["9000000000000000", String(MAX_EXPIRES_AT + 1)]) {
      const m = newMacaroon({ identifier: `t-far-${at}`, rootKey: key });
      m.addFirstPartyCaveat("kind = org");
      m.addFirstPartyCaveat("org = acme");
      m.addFirstPartyCaveat(`expires < ${at}`);
      expect(refusal(() => verifyToken(key, encode(m.exportJSON()), NOW))).toBe("malformed");
    }
    const atMax = mintToken(key, { id: "t-max", kind: "org", org: "acme", expiresAt: MAX_EXPIRES_AT });
    expect(verifyToken(key, atMax, NOW).expiresAt).toBe(MAX_EXPIRES_AT);
    expect(() =>
      mintToken(key, { id: "t", kind: "org", org: "acme", expiresAt: MAX_EXPIRES_AT + 1 }),
    ).toThrow(TypeError);
    const admin = mintToken(key, { id: "t-admin", kind: "org", org: "acme" });
    expect(() => attenuateToken(admin, { expiresAt: 9e15 })).toThrow(TypeError);
  });

  it("a token over 4 KiB or with more than 32 caveats, before any HMAC, as malformed", () => {
    const admin = mintToken(key, { id: "t-big", kind: "org", org: "acme" });
    let t = admin;
    // kind and org are two caveats: 30 more make 32, the most a token may carry.
    for (let i = 0; i < MAX_CAVEATS - 2; i++) t = attenuateToken(t, { readOnly: true });
    expect(t.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
    expect(verifyToken(key, t, NOW).readOnly).toBe(true);
    const over = attenuateToken(t, { readOnly: true });
    expect(over.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
    expect(refusal(() => verifyToken(key, over, NOW))).toBe("malformed");
    // A forged token of ~1,200 caveats is refused without hashing: well under the ~11 ms it cost.
    const forged = encode({ ...jsonOf(admin), c: Array.from({ length: 1200 }, () => ({ i: "read-only" })) });
    expect(refusal(() => verifyToken(key, forged, NOW))).toBe("malformed");
    const long = `${TOKEN_PREFIX}${"A".repeat(MAX_TOKEN_LENGTH)}`;
    expect(refusal(() => verifyToken(key, long, NOW))).toBe("malformed");
    const mixed = encode({ ...jsonOf(admin), c: Array.from({ length: 40 }, () => ({ i: "read-only" })) });
    expect(mixed.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
    expect(refusal(() => verifyToken(key, mixed, NOW))).toBe("malformed");
  });

  it("text that is not a token", () => {
    const texts = [
      "",
      "secret",
      TOKEN_PREFIX,
      `${TOKEN_PREFIX}!!`,
      `${TOKEN_PREFIX}AAAA`,
      encode([]),
      encode({ v: 1 }),
    ];
    for (const text of texts) {
      expect(refusal(() => verifyToken(key, text, NOW))).toBe("malformed");
    }
    expect(() => attenuateToken("nope", { readOnly: true })).toThrow(TokenError);
  });
});

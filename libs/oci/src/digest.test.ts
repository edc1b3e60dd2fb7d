import { describe, expect, it } from "vitest";
import { checkDigest, digestOf, isDigest } from "./digest.js";
import { DigestMismatchError } from "./errors.js";

describe("digests", () => {
  it("hashes bytes and strings alike", () => {
    expect(digestOf("")).toBe("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(digestOf(Buffer.from("abc"))).toBe(digestOf("abc"));
  });

  it("accepts only sha256 with 64 lowercase hex digits", () => {
    expect(isDigest(digestOf("x"))).toBe(true);
    expect(isDigest(digestOf("x").toUpperCase())).toBe(false);
    expect(isDigest(`sha512:${"a".repeat(64)}`)).toBe(false);
    expect(isDigest(`sha256:${"a".repeat(63)}`)).toBe(false);
    expect(isDigest(`sha256:${"g".repeat(64)}`)).toBe(false);
  });

  it("checks a digest against the expected one", () => {
    expect(() => checkDigest(digestOf("a"), undefined)).not.toThrow();
    expect(() => checkDigest(digestOf("a"), digestOf("a"))).not.toThrow();
    expect(() => checkDigest(digestOf("a"), digestOf("b"))).toThrow(DigestMismatchError);
  });
});

import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  decryptSecret,
  digestKey,
  encryptSecret,
  MasterKeys,
  masterKeyId,
  newDataKey,
  SecretsCryptoError,
  secretDigest,
} from "./envelope.js";
import { loadMasterKeys, parseMasterKey } from "./master-key.js";
import { isSecretName } from "./names.js";

const master = newDataKey();
const keys = new MasterKeys(master);

describe("envelope encryption", () => {
  it("round-trips a value through a wrapped data key", () => {
    const wrapped = keys.wrap(newDataKey(), "app:a");
    const dataKey = keys.unwrap(wrapped, "app:a");
    const box = encryptSecret(dataKey, "app:a", "DATABASE_URL", "postgres://x@y/z ✓");
    expect(Buffer.from(box).includes(Buffer.from("postgres"))).toBe(false);
    expect(decryptSecret(keys.unwrap(wrapped, "app:a"), "app:a", "DATABASE_URL", box)).toBe(
      "postgres://x@y/z ✓",
    );
  });

  it("refuses a wrong master key or data key", () => {
    const wrapped = keys.wrap(newDataKey(), "app:a");
    const other = new MasterKeys(newDataKey());
    expect(() => other.unwrap(wrapped, "app:a")).toThrow(SecretsCryptoError);
    // Same id, other bytes: the seal does not open.
    expect(() => other.unwrap({ ...wrapped, keyId: other.currentId }, "app:a")).toThrow(/does not decrypt/);
    const box = encryptSecret(newDataKey(), "app:a", "K", "v");
    expect(() => decryptSecret(newDataKey(), "app:a", "K", box)).toThrow(SecretsCryptoError);
  });

  it("binds the scope and name: a ciphertext moved to another name or app fails", () => {
    const dataKey = newDataKey();
    const box = encryptSecret(dataKey, "app:a", "A", "v");
    expect(() => decryptSecret(dataKey, "app:a", "B", box)).toThrow(SecretsCryptoError);
    expect(() => decryptSecret(dataKey, "app:b", "A", box)).toThrow(SecretsCryptoError);
    const wrapped = keys.wrap(dataKey, "app:a");
    expect(() => keys.unwrap(wrapped, "org:a")).toThrow(SecretsCryptoError);
    const tampered = Uint8Array.from(box);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    expect(() => decryptSecret(dataKey, "app:a", "A", tampered)).toThrow(SecretsCryptoError);
  });

  it("digests the same value differently per app, and the same within an app", () => {
    const [a, b] = [newDataKey(), newDataKey()];
    const da = secretDigest(digestKey(a, "app:a"), "1234");
    expect(secretDigest(digestKey(a, "app:a"), "1234")).toBe(da);
    expect(secretDigest(digestKey(b, "app:b"), "1234")).not.toBe(da);
    expect(da).toMatch(/^[0-9a-f]{32}$/);
  });

  it("rewraps a data key under a new master key and keeps its values readable", () => {
    const dataKey = newDataKey();
    const old = keys.wrap(dataKey, "app:a");
    const box = encryptSecret(dataKey, "app:a", "K", "value");
    const rotated = new MasterKeys(newDataKey(), [master]);
    expect(rotated.isCurrent(old)).toBe(false);
    const rewrapped = rotated.rewrap(old, "app:a");
    expect(rewrapped.keyId).toBe(rotated.currentId);
    expect(rotated.isCurrent(rewrapped)).toBe(true);
    expect(decryptSecret(rotated.unwrap(rewrapped, "app:a"), "app:a", "K", box)).toBe("value");
    // Once the old key is dropped, only the rewrapped data key opens.
    const only = new MasterKeys(newDataKey(), []);
    expect(() => only.unwrap(old, "app:a")).toThrow(/not configured/);
  });
});

describe("master key settings", () => {
  const b64 = Buffer.from(master).toString("base64");

  it("reads the key from the setting or a file, and the previous keys", () => {
    expect(loadMasterKeys({})).toBeUndefined();
    expect(loadMasterKeys({ key: b64 })?.currentId).toBe(masterKeyId(master));
    const file = join(tmpdir(), `hangar-secrets-key-${process.pid}`);
    writeFileSync(file, `${b64}\n`, { mode: 0o600 });
    expect(loadMasterKeys({ keyFile: file })?.currentId).toBe(masterKeyId(master));
    const previous = Buffer.from(newDataKey()).toString("base64");
    const loaded = loadMasterKeys({ key: b64, previous: [previous] });
    const opened = loaded?.unwrap(new MasterKeys(parseMasterKey(previous)).wrap(master, "s"), "s");
    expect(Buffer.from(opened ?? []).equals(master)).toBe(true);
  });

  it("refuses short keys, non-base64 and both sources at once", () => {
    expect(() => parseMasterKey("c2hvcnQ=")).toThrow(/32 random bytes/);
    expect(() => parseMasterKey("not base64!!")).toThrow(SecretsCryptoError);
    expect(() => loadMasterKeys({ key: b64, keyFile: "/x" })).toThrow(/not both/);
  });
});

describe("secret names", () => {
  it("takes environment variable names only", () => {
    for (const ok of ["A", "DATABASE_URL", "_x1"]) expect(isSecretName(ok)).toBe(true);
    for (const bad of ["", "1A", "A-B", "A.B", "A B", "A=B", "ä"]) expect(isSecretName(bad)).toBe(false);
  });
});

import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openBuildSecrets, sealBuildSecrets } from "./build-secrets.js";
import { MasterKeys, SecretsCryptoError } from "./envelope.js";

describe("build secrets", () => {
  const keys = new MasterKeys(randomBytes(32));

  it("seal every value out of sight and open for the same build", () => {
    const sealed = sealBuildSecrets(keys, "web", "b1", {
      npmrc: "//registry/:_authToken=abc123",
      token: "t0k",
    });
    expect(Object.keys(sealed.values)).toEqual(["npmrc", "token"]);
    expect(Buffer.concat(Object.values(sealed.values)).includes("abc123")).toBe(false);
    expect(openBuildSecrets(keys, "web", "b1", sealed)).toEqual({
      npmrc: "//registry/:_authToken=abc123",
      token: "t0k",
    });
  });

  it("refuse to open for another build, another app, or with another master key", () => {
    const sealed = sealBuildSecrets(keys, "web", "b1", { token: "t0k" });
    expect(() => openBuildSecrets(keys, "web", "b2", sealed)).toThrow(SecretsCryptoError);
    expect(() => openBuildSecrets(keys, "api", "b1", sealed)).toThrow(SecretsCryptoError);
    expect(() => openBuildSecrets(new MasterKeys(randomBytes(32)), "web", "b1", sealed)).toThrow(
      SecretsCryptoError,
    );
  });
});

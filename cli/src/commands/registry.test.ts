import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCliIn } from "../../test/run-cli.js";
import { registryAuthValue } from "./registry.js";

const home = mkdtempSync(join(tmpdir(), "hangar-cli-registry-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe("hangar registry", () => {
  it("writes the org secret in Docker's config.json shape", () => {
    const value = registryAuthValue("ghcr.io", "me", "p:ss");
    expect(JSON.parse(value)).toEqual({
      auths: { "ghcr.io": { auth: Buffer.from("me:p:ss").toString("base64") } },
    });
  });

  it("refuses a bad host, a missing user and a password not on stdin, before any call", async () => {
    const badHost = await runCliIn(home, [
      "registry",
      "login",
      "https://ghcr.io/x",
      "-u",
      "me",
      "--password-stdin",
    ]);
    expect(badHost.code).not.toBe(0);
    expect(badHost.stderr).toContain("is not a registry host");
    const noUser = await runCliIn(home, ["registry", "login", "ghcr.io", "--password-stdin"]);
    expect(noUser.code).not.toBe(0);
    expect(noUser.stderr).toContain("a user name is needed");
    const noStdin = await runCliIn(home, ["registry", "login", "ghcr.io", "-u", "me"]);
    expect(noStdin.code).not.toBe(0);
    expect(noStdin.stderr).toContain("--password-stdin");
  });
});

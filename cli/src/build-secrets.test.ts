import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseBuildSecret, readBuildSecrets } from "./build-secrets.js";

describe("--build-secret", () => {
  it("parses id with src= (or source=) or env=, a later one of the same id winning", () => {
    const specs = ["id=npmrc,src=.npmrc", "id=token,env=TOKEN", "id=npmrc,source=other"].reduce<
      ReturnType<typeof parseBuildSecret>
    >((prev, v) => parseBuildSecret(v, prev), []);
    expect(specs).toEqual([
      { id: "token", from: { kind: "env", name: "TOKEN" } },
      { id: "npmrc", from: { kind: "file", path: "other" } },
    ]);
  });

  it("refuses a spec without an id, with both or neither source, or with an unknown field", () => {
    for (const bad of ["src=x", "id=a b,src=x", "id=a", "id=a,src=x,env=Y", "id=a,src=x,mode=1", "id"]) {
      expect(() => parseBuildSecret(bad), bad).toThrow();
    }
  });

  it("reads the values here, and names what is missing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-cli-secret-"));
    try {
      await writeFile(join(dir, "npmrc"), "//r/:_authToken=x\n");
      const specs = parseBuildSecret(`id=npmrc,src=${join(dir, "npmrc")}`, parseBuildSecret("id=t,env=T"));
      expect(await readBuildSecrets(specs, { T: "v" })).toEqual({ t: "v", npmrc: "//r/:_authToken=x\n" });
      await expect(readBuildSecrets(specs, {})).rejects.toThrow(/the environment variable T is not set/);
      await expect(readBuildSecrets(parseBuildSecret(`id=n,src=${join(dir, "none")}`), {})).rejects.toThrow(
        /cannot read .*none \(ENOENT\)/,
      );
      await expect(
        readBuildSecrets(parseBuildSecret("id=big,env=B"), { B: "x".repeat(9000) }),
      ).rejects.toThrow(/at most 8 KiB/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

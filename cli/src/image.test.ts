import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveImage } from "./image.js";

let cwd: string;

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), "hangar-cli-image-"));
  await mkdir(join(cwd, "app"));
  await mkdir(join(cwd, "nginx"));
});

afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe("resolveImage", () => {
  it("absolutizes dir: paths", () => {
    expect(resolveImage("dir:app", cwd)).toBe(`dir:${join(cwd, "app")}`);
    expect(resolveImage("dir:/srv/site", cwd)).toBe("dir:/srv/site");
    expect(resolveImage("dir:~/site", cwd)).toBe(`dir:${join(homedir(), "site")}`);
  });

  it("turns paths into dir: images", () => {
    expect(resolveImage(".", cwd)).toBe(`dir:${cwd}`);
    expect(resolveImage("./app", cwd)).toBe(`dir:${join(cwd, "app")}`);
    expect(resolveImage(join(cwd, "app"), cwd)).toBe(`dir:${join(cwd, "app")}`);
    expect(resolveImage("app", cwd)).toBe(`dir:${join(cwd, "app")}`);
  });

  it("rejects a path that is not a folder", () => {
    expect(() => resolveImage("./missing", cwd)).toThrow(/not a folder/);
  });

  it("passes image references through, even when a folder has the same name", () => {
    expect(resolveImage("nginx:1.27", cwd)).toBe("nginx:1.27");
    expect(resolveImage("ghcr.io/acme/web@sha256:abc", cwd)).toBe("ghcr.io/acme/web@sha256:abc");
    expect(resolveImage("redis", cwd)).toBe("redis");
  });
});

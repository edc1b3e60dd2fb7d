// The comparison's pure parts: which differences count, and which paths are left out.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  agrees,
  buildahDockerfile,
  diffImages,
  type ImageView,
  readRootfs,
  renamedPaths,
} from "./compare.js";

const root = mkdtempSync(join(tmpdir(), "hangar-compare-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const view = (config: Record<string, unknown>, files: Record<string, string>): ImageView => ({
  config,
  files: new Map(Object.entries(files)),
});

describe("diffImages", () => {
  it("finds nothing between equal images, reading empty and absent fields alike", () => {
    const a = view({ Cmd: ["node"], Env: ["A=1"], ExposedPorts: {} }, { "/app": "dir 0755 0:0" });
    const b = view({ Cmd: ["node"], Env: ["A=1"], User: "" }, { "/app": "dir 0755 0:0" });
    const diff = diffImages(a, b);
    expect(diff).toEqual({ config: [], files: [] });
    expect(
      agrees({
        entry: "x",
        hangarSeconds: 0,
        buildahSeconds: 0,
        configDiffs: [],
        fileDiffs: [],
        volatilePaths: [],
        filesCompared: 1,
      }),
    ).toBe(true);
  });

  it("reads Env as a set: a variable set again keeps its place under BuildKit and moves under buildah", () => {
    const a = view({ Env: ["PATH=/app/bin:/bin", "NODE_ENV=production"] }, {});
    const b = view({ Env: ["NODE_ENV=production", "PATH=/app/bin:/bin"] }, {});
    expect(diffImages(a, b).config).toEqual([]);
    const c = view({ Env: ["NODE_ENV=development", "PATH=/app/bin:/bin"] }, {});
    expect(diffImages(a, c).config).toHaveLength(1);
  });

  it("names each config field and each file that differs, and files only one side has", () => {
    const a = view({ User: "app", WorkingDir: "/app" }, { "/a": "file 0644 0:0 x", "/b": "dir 0755 0:0" });
    const b = view(
      { User: "root", WorkingDir: "/app" },
      {
        "/a": "file 0755 0:0 x",
        "/c": "dir 0755 0:0",
        // buildah's empty mount point for a RUN's resolv.conf, left in its layer: not a difference.
        "/etc/resolv.conf": "file 0755 0:0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        // The same path with content is one.
        "/etc/hosts": "file 0644 0:0 abc",
      },
    );
    const diff = diffImages(a, b);
    expect(diff.config).toEqual(['User: hangar "app" buildah "root"']);
    expect(diff.files.map((d) => d.text)).toEqual([
      "/a: hangar file 0644 0:0 x / buildah file 0755 0:0 x",
      "only in hangar: /b (dir 0755 0:0)",
      "only in buildah: /c (dir 0755 0:0)",
      "only in buildah: /etc/hosts (file 0644 0:0 abc)",
    ]);
  });
});

describe("renamedPaths", () => {
  const dir = "dir 0755 0:0";
  const file = (x: string) => `file 0644 0:0 ${x}`;
  const image = (id: string, extra: Record<string, string> = {}) =>
    view(
      {},
      {
        "/app/.next": dir,
        "/app/.next/static": dir,
        "/app/.next/static/chunks": dir,
        [`/app/.next/static/${id}`]: dir,
        [`/app/.next/static/${id}/_buildManifest.js`]: file(id),
        ...extra,
      },
    );

  it("leaves out what each side has under a name that two buildah builds also choose differently", () => {
    const left = renamedPaths(image("hhh"), image("bbb"), image("ccc"));
    expect([...left].sort()).toEqual([
      "/app/.next/static/bbb",
      "/app/.next/static/bbb/_buildManifest.js",
      "/app/.next/static/hhh",
      "/app/.next/static/hhh/_buildManifest.js",
    ]);
  });

  it("keeps an entry more on one side, and every renamed path where the buildah builds agree", () => {
    // Hangar writes one more directory where the names change: not one name for another.
    const extra = image("hhh", { "/app/.next/static/more": dir });
    expect(renamedPaths(extra, image("bbb"), image("ccc"))).toEqual(new Set());
    // The two buildah builds name it alike: a name only Hangar's image has is a difference.
    expect(renamedPaths(image("hhh"), image("bbb"), image("bbb"))).toEqual(new Set());
  });
});

describe("readRootfs", () => {
  it("records type, mode, owner, content hash and link target, leaving out logs, caches, /tmp and npm's logs", () => {
    const rootfs = join(root, "rootfs");
    for (const d of [
      "app",
      "var/log/apt",
      "var/cache/apt",
      "tmp",
      "root/.npm/_logs",
      "home/node/.npm/_logs",
    ]) {
      mkdirSync(join(rootfs, d), { recursive: true });
    }
    writeFileSync(join(rootfs, "app", "a.txt"), "hello");
    symlinkSync("a.txt", join(rootfs, "app", "link"));
    for (const f of [
      "var/log/apt/x",
      "var/cache/apt/x",
      "tmp/x",
      "root/.npm/_logs/x",
      "home/node/.npm/_logs/x",
    ]) {
      writeFileSync(join(rootfs, f), "noise");
    }
    return readRootfs(rootfs).then((files) => {
      const uid = process.getuid?.() ?? 0;
      const gid = process.getgid?.() ?? 0;
      expect(files.get("/app/a.txt")).toMatch(
        new RegExp(
          `^file 0\\d{3} ${uid}:${gid} 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824$`,
        ),
      );
      expect(files.get("/app/link")).toBe(`symlink ${uid}:${gid} -> a.txt`);
      expect([...files.keys()].sort()).toEqual([
        "/app",
        "/app/a.txt",
        "/app/link",
        "/home",
        "/home/node",
        "/home/node/.npm",
        "/root",
        "/root/.npm",
        "/var",
      ]);
    });
  });
});

describe("buildahDockerfile", () => {
  it("takes --link off COPY and ADD, and leaves every other flag and line as it was", () => {
    const dockerfile = [
      "FROM node:20-slim",
      "COPY --link package-lock.json package.json ./",
      "copy --from=build --link=true /app /app",
      "ADD --chown=1000:1000 --link --chmod=0644 a.txt /a.txt",
      "COPY --linked-thing x y",
      "RUN echo --link",
      "COPY --link . .",
    ].join("\n");
    expect(buildahDockerfile(dockerfile)).toBe(
      [
        "FROM node:20-slim",
        "COPY package-lock.json package.json ./",
        "copy --from=build /app /app",
        "ADD --chown=1000:1000 --chmod=0644 a.txt /a.txt",
        "COPY --linked-thing x y",
        "RUN echo --link",
        "COPY . .",
      ].join("\n"),
    );
  });

  it("returns a Dockerfile without --link unchanged", () => {
    const dockerfile = "FROM debian:bookworm\nCOPY --chown=app . /app\n";
    expect(buildahDockerfile(dockerfile)).toBe(dockerfile);
  });
});

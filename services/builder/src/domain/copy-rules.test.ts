import { describe, expect, it } from "vitest";
import {
  archiveKind,
  cleanSource,
  dockerignoreExcludes,
  hasGlob,
  isUrl,
  matchComponent,
  placeSource,
} from "./copy-rules.js";
import { CopySourceError } from "./errors.js";

describe("COPY path rules", () => {
  it("cleans sources relative to the context and refuses climbing out", () => {
    expect(cleanSource("./src/")).toBe("src");
    expect(cleanSource("/package.json")).toBe("package.json");
    expect(cleanSource(".")).toBe(".");
    expect(cleanSource("a/../b")).toBe("b");
    expect(() => cleanSource("../secret")).toThrow(CopySourceError);
    expect(() => cleanSource("a/../../x")).toThrow(/outside the build context/);
  });

  it("matches globs per component like Go's filepath.Match", () => {
    expect(hasGlob("*.json")).toBe(true);
    expect(hasGlob("src/a?.ts")).toBe(true);
    expect(hasGlob("file[0-9]")).toBe(true);
    expect(hasGlob("plain/file.txt")).toBe(false);
    expect(hasGlob("lit\\*")).toBe(false);
    expect(matchComponent("*.json", "package.json")).toBe(true);
    expect(matchComponent("*.json", "package.json5")).toBe(false);
    expect(matchComponent("package*.json", "package-lock.json")).toBe(true);
    expect(matchComponent("a?c", "abc")).toBe(true);
    expect(matchComponent("f[0-9]", "f7")).toBe(true);
    expect(matchComponent("f[^0-9]", "f7")).toBe(false);
    expect(matchComponent("f[^0-9]", "fx")).toBe(true);
    expect(matchComponent("a.b", "axb")).toBe(false);
  });

  it("copies a directory's contents into the destination", () => {
    expect(placeSource({ path: "src", isDir: true }, "/app/src", false, false)).toEqual({
      from: "src",
      to: "/app/src",
      contentsOnly: true,
    });
  });

  it("puts a file into a destination that names a directory, else makes it the destination", () => {
    expect(placeSource({ path: "a/b.txt", isDir: false }, "/dst", true, false).to).toBe("/dst/b.txt");
    expect(placeSource({ path: "a/b.txt", isDir: false }, "/dst", false, true).to).toBe("/dst/b.txt");
    expect(placeSource({ path: "a/b.txt", isDir: false }, "/dst", false, false).to).toBe("/dst");
  });

  it("tells URLs and archives apart from local files", () => {
    expect(isUrl("https://example.com/x.tar.gz")).toBe(true);
    expect(isUrl("git@github.com:a/b.git")).toBe(true);
    expect(isUrl("vendor/x.tar.gz")).toBe(false);
    expect(archiveKind(Uint8Array.from([0x1f, 0x8b, 8]))).toBe("gzip");
    expect(archiveKind(Uint8Array.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toBe("xz");
    const tarHead = new Uint8Array(512);
    tarHead.set(Buffer.from("ustar"), 257);
    expect(archiveKind(tarHead)).toBe("tar");
    expect(archiveKind(Buffer.from("hello world"))).toBeUndefined();
  });

  it("reads .dockerignore as Docker does: folders, **, negations, last line wins", () => {
    const ignore =
      "# fly launch\n/.git\n/node_modules\n.dockerignore\nDockerfile\n*.log\n!keep.log\ndocs/**/*.md\n";
    expect(dockerignoreExcludes(ignore, "Dockerfile")).toBe(true);
    expect(dockerignoreExcludes(ignore, ".dockerignore")).toBe(true);
    expect(dockerignoreExcludes(ignore, "node_modules/express/index.js")).toBe(true);
    expect(dockerignoreExcludes(ignore, "debug.log")).toBe(true);
    expect(dockerignoreExcludes(ignore, "docs/a/b/c.md")).toBe(true);
    expect(dockerignoreExcludes(ignore, "keep.log")).toBe(false);
    expect(dockerignoreExcludes(ignore, "server.js")).toBe(false);
    expect(dockerignoreExcludes(ignore, "src/Dockerfile")).toBe(false);
    expect(dockerignoreExcludes("", "Dockerfile")).toBe(false);
  });
});

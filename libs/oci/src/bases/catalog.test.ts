import { describe, expect, it } from "vitest";
import { baseSpecOf, bundledToolVersions, newestOfMajor, platformBaseNames } from "./catalog.js";
import { slimExcludes } from "./debian.js";

describe("baseSpecOf", () => {
  it("names the bases the platform makes, under Docker Hub's and Hangar's names", () => {
    expect(baseSpecOf("debian:bookworm")).toEqual({ kind: "debian", slim: false });
    expect(baseSpecOf("docker.io/library/debian:bookworm-slim")).toEqual({ kind: "debian", slim: true });
    expect(baseSpecOf("node:20")).toEqual({ kind: "node", version: { major: "20" }, slim: false });
    expect(baseSpecOf("node:22-bookworm-slim")).toEqual({
      kind: "node",
      version: { major: "22" },
      slim: true,
    });
    expect(baseSpecOf("registry.hangar.internal/library/node:18-slim")).toEqual({
      kind: "node",
      version: { major: "18" },
      slim: true,
    });
    expect(baseSpecOf("node:20.18.1-slim")).toEqual({
      kind: "node",
      version: { exact: "20.18.1" },
      slim: true,
    });
    expect(baseSpecOf("postgres:15")).toEqual({ kind: "postgres" });
    expect(baseSpecOf("hangar/postgres-member:15")).toEqual({ kind: "postgres-member" });
    expect(baseSpecOf("registry.hangar.internal/hangar/postgres-member:15")).toEqual({
      kind: "postgres-member",
    });
  });

  it("leaves everything else to the registries", () => {
    for (const ref of [
      "node",
      "node:latest",
      "node:19",
      "node:20-alpine",
      "node:20.1",
      "debian:bullseye",
      "debian",
      "postgres:16",
      "hangar/postgres-member:16",
      "hangar/postgres-member",
      "ghcr.io/hangar/postgres-member:15",
      "ghcr.io/library/node:20",
      "myapp/node:20",
      `node@sha256:${"a".repeat(64)}`,
      "Not A Ref",
    ]) {
      expect(baseSpecOf(ref), ref).toBeUndefined();
    }
  });

  it("lists what exists for error messages", () => {
    expect(platformBaseNames()).toEqual(
      expect.arrayContaining([
        "debian:bookworm-slim",
        "node:20-slim",
        "postgres:15",
        "hangar/postgres-member:15",
      ]),
    );
  });
});

describe("newestOfMajor", () => {
  it("takes the highest release of the major, numerically, and no pre-release", () => {
    const versions = ["20.9.0", "20.10.0", "20.18.1", "20.2.0", "21.0.0", "20.19.0-rc.1", "2.0.0"];
    expect(newestOfMajor(versions, "20")).toBe("20.18.1");
    expect(newestOfMajor(versions, "18")).toBeUndefined();
  });
});

describe("bundledToolVersions", () => {
  it("reads the newest npm and corepack upgrades of a Node CHANGELOG", () => {
    const changelog = [
      "## 2025-01-21, Version 20.18.2",
      "* [abc] - deps: update corepack to 0.31.0",
      "* [def] - deps: upgrade npm to 10.8.2",
      "## 2024-10-03, Version 20.18.0",
      "* [123] - deps: upgrade npm to 10.8.1",
      "* [456] - deps: update corepack to 0.29.4",
    ].join("\n");
    expect(bundledToolVersions(changelog)).toEqual({ npm: "10.8.2", corepack: "0.31.0" });
    expect(bundledToolVersions("no tools")).toEqual({});
  });
});

describe("slimExcludes", () => {
  it("leaves out docs, manuals and locales as the official slim's dpkg filters do, keeping copyrights", () => {
    expect(slimExcludes("usr/share/doc/bash/README")).toBe(true);
    expect(slimExcludes("usr/share/doc/bash/copyright")).toBe(false);
    expect(slimExcludes("usr/share/doc/bash")).toBe(false);
    expect(slimExcludes("usr/share/man/man1")).toBe(true);
    expect(slimExcludes("usr/share/man")).toBe(false);
    expect(slimExcludes("usr/share/locale/de")).toBe(true);
    expect(slimExcludes("usr/share/locale/locale.alias")).toBe(false);
    expect(slimExcludes("usr/share/info/dir")).toBe(true);
    expect(slimExcludes("usr/share/zoneinfo/UTC")).toBe(false);
    expect(slimExcludes("usr/bin/man")).toBe(false);
  });
});

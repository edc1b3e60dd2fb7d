import { describe, expect, it } from "vitest";
import { digestOf } from "./digest.js";
import { InvalidReferenceError } from "./errors.js";
import { formatImageRef, parseImageRef } from "./ref.js";

const d = digestOf("manifest");

describe("image refs", () => {
  it("parses Docker-style references", () => {
    expect(parseImageRef("node:20")).toEqual({ repository: "library/node", tag: "20" });
    expect(parseImageRef("node")).toEqual({ repository: "library/node" });
    expect(parseImageRef("hello:v1")).toEqual({ repository: "library/hello", tag: "v1" });
    expect(parseImageRef("acme/web")).toEqual({ repository: "acme/web" });
    expect(parseImageRef(`registry.hangar.internal/hello@${d}`)).toEqual({
      registry: "registry.hangar.internal",
      repository: "hello",
      digest: d,
    });
    expect(parseImageRef("127.0.0.1:4280/a/b:t")).toEqual({
      registry: "127.0.0.1:4280",
      repository: "a/b",
      tag: "t",
    });
    expect(parseImageRef("localhost/x:1")).toEqual({ registry: "localhost", repository: "x", tag: "1" });
    expect(parseImageRef(`docker.io/node:20-slim@${d}`)).toEqual({
      registry: "docker.io",
      repository: "library/node",
      tag: "20-slim",
      digest: d,
    });
  });

  it("refuses malformed references", () => {
    for (const bad of ["Node:20", "node:", "node@sha256:abc", "a//b", "", "node:-x", "x/-y"]) {
      expect(() => parseImageRef(bad), bad).toThrow(InvalidReferenceError);
    }
  });

  it("formats references back", () => {
    for (const ref of [
      "node:20",
      "acme/web",
      `registry.hangar.internal/hello:v1@${d}`,
      "127.0.0.1:4280/a/b:t",
    ]) {
      expect(formatImageRef(parseImageRef(ref))).toBe(ref);
    }
    expect(formatImageRef({ registry: "r.example", repository: "library/node", tag: "20" })).toBe(
      "r.example/library/node:20",
    );
  });
});

import { describe, expect, it } from "vitest";
import { cacheRepository, isUpstreamRef, parseUpstreams } from "../image-source.js";
import { choosePlatform, type ImageIndex } from "../media.js";
import { parseImageRef } from "../ref.js";
import { parseWwwAuthenticate } from "./auth.js";
import { DEFAULT_RETRY, isRetryableStatus, retryDelayMs } from "./backoff.js";
import { credentialsFor, parseDockerAuthConfig, withCredentials } from "./credentials.js";

describe("WWW-Authenticate", () => {
  it("reads Docker Hub's Bearer challenge, commas inside quotes included", () => {
    const c = parseWwwAuthenticate(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull,push"',
    );
    expect(c).toEqual({
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/node:pull,push",
      },
    });
  });
  it("reads Basic and unquoted values", () => {
    expect(parseWwwAuthenticate('Basic realm="Registry Realm"')).toEqual({
      scheme: "basic",
      params: { realm: "Registry Realm" },
    });
    expect(parseWwwAuthenticate("Bearer realm=x, service=y")?.params).toEqual({ realm: "x", service: "y" });
    expect(parseWwwAuthenticate("")).toBeUndefined();
  });
});

describe("backoff", () => {
  it("retries 429 and 5xx only", () => {
    expect([429, 500, 503].map(isRetryableStatus)).toEqual([true, true, true]);
    expect([400, 401, 403, 404].map(isRetryableStatus)).toEqual([false, false, false, false]);
  });
  it("doubles, honours Retry-After in seconds or as a date, and caps", () => {
    expect([0, 1, 2].map((n) => retryDelayMs(n, DEFAULT_RETRY))).toEqual([500, 1000, 2000]);
    expect(retryDelayMs(0, DEFAULT_RETRY, "3")).toBe(3000);
    expect(retryDelayMs(0, DEFAULT_RETRY, new Date(10_000).toUTCString(), 8_000)).toBe(2000);
    expect(retryDelayMs(0, DEFAULT_RETRY, "3600")).toBe(DEFAULT_RETRY.maxDelayMs);
  });
});

describe("platform choice", () => {
  const d = (architecture: string, n: string) => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: `sha256:${n.repeat(64)}` as const,
    size: 1,
    platform: { architecture, os: "linux" },
  });
  it("takes linux/<arch> of an index, and nothing when it has none", () => {
    const index: ImageIndex = { schemaVersion: 2, manifests: [d("arm64", "a"), d("amd64", "b")] };
    expect(choosePlatform(index, "amd64")?.digest).toBe(`sha256:${"b".repeat(64)}`);
    expect(choosePlatform(index, "s390x")).toBeUndefined();
  });
});

describe("credentials and upstreams", () => {
  it("reads Docker's auths, Docker Hub under any of its names", () => {
    const config = parseDockerAuthConfig(
      JSON.stringify({
        auths: { "https://index.docker.io/v1/": { auth: Buffer.from("u:p:w").toString("base64") } },
      }),
    );
    expect(credentialsFor(config, "docker.io")).toEqual({ username: "u", password: "p:w" });
    expect(credentialsFor(config, "ghcr.io")).toBeUndefined();
    const next = withCredentials(config, "ghcr.io", { username: "a", password: "b" });
    expect(credentialsFor(next, "ghcr.io")).toEqual({ username: "a", password: "b" });
    expect(credentialsFor(withCredentials(next, "ghcr.io", undefined), "ghcr.io")).toBeUndefined();
    expect(() => parseDockerAuthConfig("{}")).toThrow(/auths/);
  });
  it("parses upstreams and names cache repositories", () => {
    const up = parseUpstreams(
      '{"docker.io":"https://registry-1.docker.io","localhost:5000":"http://127.0.0.1:5000"}',
    );
    expect(isUpstreamRef(parseImageRef("localhost:5000/x/app:1"), up)).toBe(true);
    expect(isUpstreamRef(parseImageRef("x/app:1"), up)).toBe(false);
    expect(cacheRepository("localhost:5000", "x/app")).toBe("localhost_5000/x/app");
    expect(parseUpstreams("")).toEqual({});
    expect(() => parseUpstreams('{"a":"ftp://x"}')).toThrow(/http\(s\) URL/);
    expect(() => parseUpstreams("[1]")).toThrow(/JSON object/);
  });
});

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiToken,
  appUrl,
  ConfigError,
  DEFAULT_API_URL,
  DEFAULT_PROXY_URL,
  loadConfig,
  NO_PLATFORM_MESSAGE,
  NO_TOKEN_MESSAGE,
  requireApi,
} from "./config.js";

let home: string;
let empty: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "hangar-cli-config-"));
  empty = await mkdtemp(join(tmpdir(), "hangar-cli-config-empty-"));
  const local = {
    api_url: "http://file-api:1",
    proxy_url: "http://127.0.0.1:9999",
    token: "file-token",
  };
  await writeFile(join(home, "local.json"), JSON.stringify(local));
});

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
  await rm(empty, { recursive: true, force: true });
});

describe("loadConfig", () => {
  it("reads $HANGAR_HOME/local.json", async () => {
    const config = await loadConfig({ HANGAR_HOME: home });
    expect(config).toEqual({
      file: join(home, "local.json"),
      apiUrl: "http://file-api:1",
      token: "file-token",
      proxyUrl: "http://127.0.0.1:9999",
    });
  });

  it("lets each environment variable win over the file", async () => {
    const config = await loadConfig({
      HANGAR_HOME: home,
      HANGAR_API_URL: "http://env-api:3",
      HANGAR_API_TOKEN: "env-token",
    });
    expect(config.apiUrl).toBe("http://env-api:3");
    expect(config.token).toBe("env-token");
    expect(config.proxyUrl).toBe("http://127.0.0.1:9999");
  });

  it("works from the environment alone", async () => {
    const config = await loadConfig({
      HANGAR_HOME: empty,
      HANGAR_API_URL: "http://a:1",
      HANGAR_API_TOKEN: "t",
    });
    expect(requireApi(config)).toEqual({ apiUrl: "http://a:1", token: "t" });
    expect(config.proxyUrl).toBe(DEFAULT_PROXY_URL);
    expect(config.file).toBeUndefined();
  });

  it("defaults the API address when local.json has none", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-cli-config-noapi-"));
    try {
      await writeFile(join(dir, "local.json"), JSON.stringify({ token: "t" }));
      expect(requireApi(await loadConfig({ HANGAR_HOME: dir }))).toEqual({
        apiUrl: DEFAULT_API_URL,
        token: "t",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("without a platform or a token, requireApi says how to get them", async () => {
    const config = await loadConfig({ HANGAR_HOME: empty });
    expect(() => requireApi(config)).toThrow(new ConfigError(NO_PLATFORM_MESSAGE));
    expect(() => requireApi({ ...config, apiUrl: "http://a:1" })).toThrow(new ConfigError(NO_TOKEN_MESSAGE));
  });

  it("reports a local.json that is not JSON", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-cli-config-bad-"));
    try {
      await writeFile(join(dir, "local.json"), "{ not json");
      await expect(loadConfig({ HANGAR_HOME: dir })).rejects.toThrow(/cannot parse .*local\.json/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("appUrl", () => {
  it("puts the app in front of the proxy's host, using *.localhost for loopback addresses", () => {
    expect(appUrl("web", "http://localhost:8080")).toBe("http://web.localhost:8080");
    expect(appUrl("web", "http://127.0.0.1:8080/")).toBe("http://web.localhost:8080");
    expect(appUrl("web", "http://0.0.0.0:80")).toBe("http://web.localhost");
    expect(appUrl("web", "https://hangar.example.com")).toBe("https://web.hangar.example.com");
  });
});

describe("the API token", () => {
  it("is read from FLY_API_TOKEN too, HANGAR_API_TOKEN winning over it and both over the file", async () => {
    expect((await loadConfig({ HANGAR_HOME: home, FLY_API_TOKEN: "fly-token" })).token).toBe("fly-token");
    const both = { HANGAR_HOME: home, FLY_API_TOKEN: "fly-token", HANGAR_API_TOKEN: "env-token" };
    expect((await loadConfig(both)).token).toBe("env-token");
    expect((await loadConfig({ HANGAR_HOME: home, FLY_API_TOKEN: "" })).token).toBe("file-token");
  });

  it("drops flyctl's FlyV1 prefix", async () => {
    expect((await loadConfig({ HANGAR_HOME: empty, FLY_API_TOKEN: "FlyV1 hm2_abc" })).token).toBe("hm2_abc");
    expect(apiToken("  flyv1   hm2_abc \n")).toBe("hm2_abc");
    expect(apiToken("hm2_abc")).toBe("hm2_abc");
    expect(apiToken("FlyV1 ")).toBeUndefined();
    expect(apiToken(42)).toBeUndefined();
  });
});

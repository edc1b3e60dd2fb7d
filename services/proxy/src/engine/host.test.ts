import { describe, expect, it } from "vitest";
import { appFromHost, normalizeDomains } from "./host.js";

describe("appFromHost", () => {
  const domains = normalizeDomains(["localhost", "Fly.Dev."]);

  it("takes the app from <app>.<domain>, ignoring the port and case", () => {
    expect(appFromHost("web.localhost", domains)).toBe("web");
    expect(appFromHost("web.localhost:8080", domains)).toBe("web");
    expect(appFromHost("My-App.FLY.dev", domains)).toBe("my-app");
    expect(appFromHost("web.localhost.:8080", domains)).toBe("web");
  });

  it("names no app for other hosts", () => {
    for (const host of [
      undefined,
      "",
      "localhost",
      "localhost:8080",
      ".localhost",
      "web.example.com",
      "weblocalhost",
      "a.b.localhost",
      "[::1]:8080",
      "127.0.0.1:8080",
    ]) {
      expect(appFromHost(host, domains), String(host)).toBeUndefined();
    }
  });

  it("prefers the most specific domain", () => {
    const ds = normalizeDomains(["dev", "fly.dev"]);
    expect(ds).toEqual(["fly.dev", "dev"]);
    expect(appFromHost("web.fly.dev", ds)).toBe("web");
    expect(appFromHost("web.dev", ds)).toBe("web");
  });
});

import { EDGE_DEFAULT_LIMITS } from "@hangar/edge/contract";
import { describe, expect, it } from "vitest";
import { edgeBundleName } from "./edge.js";
import { AppConfigError, parseAppConfig } from "./parse-app-config.js";

describe("[edge] in the app config", () => {
  it("fills cpu_ms and memory_mb with the runtime's defaults; entry stays for detection", () => {
    const { config, warnings } = parseAppConfig('app = "router"\n\n[edge]\n', "hangar.toml");
    expect(config.edge).toEqual({
      cpu_ms: EDGE_DEFAULT_LIMITS.cpuMs,
      memory_mb: EDGE_DEFAULT_LIMITS.memoryMb,
    });
    expect(warnings).toEqual([]);
    const set = parseAppConfig('[edge]\nentry = "src/main.ts"\ncpu_ms = 20\nmemory_mb = 64\n', "hangar.toml");
    expect(set.config.edge).toEqual({ entry: "src/main.ts", cpu_ms: 20, memory_mb: 64 });
  });

  it("warns about an unknown key with its line", () => {
    const { config, warnings } = parseAppConfig('app = "a"\n[edge]\ncpu_ms = 10\ncpus = 2\n', "hangar.toml");
    expect(warnings).toEqual(["hangar.toml:4: unknown key edge.cpus (ignored)"]);
    expect(config.edge?.cpu_ms).toBe(10);
  });

  it("refuses limits out of bounds or of the wrong type, naming the line", () => {
    const cases: [string, RegExp][] = [
      ["[edge]\ncpu_ms = 0\n", /hangar\.toml:2: edge\.cpu_ms: expected at least 1, got 0/],
      ["[edge]\nmemory_mb = 4\n", /hangar\.toml:2: edge\.memory_mb: expected at least 8, got 4/],
      ["[edge]\nmemory_mb = 4096\n", /hangar\.toml:2: edge\.memory_mb: expected at most 2048, got 4096/],
      ['[edge]\ncpu_ms = "fast"\n', /hangar\.toml:2: edge\.cpu_ms: expected a number, got string/],
      ['[edge]\nentry = ""\n', /hangar\.toml:2: edge\.entry: expected a non-empty string/],
    ];
    for (const [text, message] of cases) {
      expect(() => parseAppConfig(text, "hangar.toml")).toThrow(AppConfigError);
      expect(() => parseAppConfig(text, "hangar.toml")).toThrow(message);
    }
  });

  it("warns about what would give an edge app machines, once a key, at its line", () => {
    const text = [
      'app = "router"',
      "[edge]",
      "[build]",
      '  image = "nginx"',
      "[http_service]",
      "  internal_port = 8080",
      "[[services]]",
      "  internal_port = 9000",
      "[[services]]",
      "  internal_port = 9001",
      "[env]",
      '  ORIGIN = "https://example.com"',
    ].join("\n");
    const { config, warnings } = parseAppConfig(text, "hangar.toml");
    expect(warnings).toEqual([
      "hangar.toml:3: build is not used by an edge app ([edge] runs in the proxies, with no machines) (ignored)",
      "hangar.toml:5: http_service is not used by an edge app ([edge] runs in the proxies, with no machines) (ignored)",
      "hangar.toml:7: services is not used by an edge app ([edge] runs in the proxies, with no machines) (ignored)",
    ]);
    // [env] is the app's env as the edge code sees it: no warning.
    expect(config.env).toEqual({ ORIGIN: "https://example.com" });
  });

  it("names a bundle's object by app and digest", () => {
    expect(edgeBundleName("router", "sha256:ab")).toBe("router/sha256:ab");
  });
});

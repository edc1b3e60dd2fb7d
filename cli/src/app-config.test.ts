import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadAppConfig, resolveAppName } from "./app-config.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-app-config-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loadAppConfig", () => {
  it("prefers hangar.toml over fly.toml, and reads -c relative to the working folder", async () => {
    await writeFile(join(dir, "fly.toml"), 'app = "from-fly"\n');
    expect((await loadAppConfig(dir))?.config.app).toBe("from-fly");
    await writeFile(join(dir, "hangar.toml"), 'app = "from-hangar"\n');
    expect((await loadAppConfig(dir))?.config.app).toBe("from-hangar");
    expect((await loadAppConfig("/elsewhere", "fly.toml", dir))?.config.app).toBe("from-fly");
  });

  it("says which file, line and key are wrong", async () => {
    await writeFile(join(dir, "fly.toml"), '[http_service]\ninternal_port = "x"\n');
    await expect(loadAppConfig(dir)).rejects.toThrow(
      `${join(dir, "fly.toml")} has errors:\nfly.toml:2: http_service.internal_port: expected a number, got string`,
    );
  });

  it("is undefined without a file, and an error for a -c file that does not exist", async () => {
    expect(await loadAppConfig(dir)).toBeUndefined();
    await expect(loadAppConfig(dir, "nope.toml")).rejects.toThrow(/nope\.toml does not exist/);
  });
});

describe("resolveAppName", () => {
  it("takes -a over a config `app` that is no app name, and refuses that name without -a, saying what to do", async () => {
    await writeFile(join(dir, "fly.toml"), 'app = "$APP_NAME$"\n');
    const loaded = await loadAppConfig(dir);
    expect(resolveAppName("web", loaded)).toBe("web");
    expect(() => resolveAppName(undefined, loaded)).toThrow(
      `${join(dir, "fly.toml")}: app "$APP_NAME$" is not an app name (lowercase letters, digits and dashes, at most 63)`,
    );
    try {
      resolveAppName(undefined, loaded);
    } catch (err) {
      expect((err as { hint?: string }).hint).toBe(
        "pass -a <app>, or set `app` in fly.toml to the app's name",
      );
    }
  });

  it("takes -a, else the config's app, else says to pass -a or run launch", async () => {
    await writeFile(join(dir, "hangar.toml"), 'app = "web"\n');
    const loaded = await loadAppConfig(dir);
    expect(resolveAppName("other", loaded)).toBe("other");
    expect(resolveAppName(undefined, loaded)).toBe("web");
    expect(() => resolveAppName(undefined, undefined)).toThrow(/no app given/);
    try {
      resolveAppName(undefined, undefined);
    } catch (err) {
      expect((err as { hint?: string }).hint).toBe(
        "pass -a <app>, or run `hangar launch` to write a hangar.toml",
      );
    }
  });
});

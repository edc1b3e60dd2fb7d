import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  ConfigError,
  defineServiceConfig,
  partlySharedSettings,
  port,
  setting,
  settingsTable,
} from "./settings.js";

const config = defineServiceConfig("echo-box", {
  HANGAR_ECHO_BOX_OPS_PORT: port(4999, { description: "ops", legacy: "HANGAR_ECHO_PORT" }),
  HANGAR_ECHO_BOX_MODE: setting(z.enum(["loud", "quiet"]).default("quiet"), { description: "how it echoes" }),
});

function load(env: NodeJS.ProcessEnv) {
  const warnings: string[] = [];
  return { settings: config.load(env, (m) => warnings.push(m)), warnings };
}

describe("service settings", () => {
  it("gives the defaults of an empty environment, shared and own, without warnings", () => {
    const { settings, warnings } = load({});
    expect(settings.HANGAR_ECHO_BOX_OPS_PORT).toBe(4999);
    expect(settings.HANGAR_ECHO_BOX_MODE).toBe("quiet");
    expect(settings.HANGAR_NATS_URL).toBe("nats://127.0.0.1:4222");
    expect(settings.HANGAR_BIND_HOST).toBe("127.0.0.1");
    expect(settings.HANGAR_STREAM_REPLICAS).toBe(1);
    expect(settings.HANGAR_NATS_CREDS).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it("reads values and treats empty ones as unset", () => {
    const { settings } = load({
      HANGAR_ECHO_BOX_OPS_PORT: "5001",
      HANGAR_STREAM_REPLICAS: "3",
      HANGAR_ECHO_BOX_MODE: "",
    });
    expect(settings.HANGAR_ECHO_BOX_OPS_PORT).toBe(5001);
    expect(settings.HANGAR_STREAM_REPLICAS).toBe(3);
    expect(settings.HANGAR_ECHO_BOX_MODE).toBe("quiet");
  });

  it("reads an old name with a warning that names the new one", () => {
    const { settings, warnings } = load({ HANGAR_ECHO_PORT: "5002" });
    expect(settings.HANGAR_ECHO_BOX_OPS_PORT).toBe(5002);
    expect(warnings).toEqual([
      "HANGAR_ECHO_PORT is deprecated: set HANGAR_ECHO_BOX_OPS_PORT instead (the old name is read until the next release)",
    ]);
  });

  it("prefers the new name over the old one, and warns that the old one is ignored", () => {
    const { settings, warnings } = load({ HANGAR_ECHO_PORT: "5002", HANGAR_ECHO_BOX_OPS_PORT: "5003" });
    expect(settings.HANGAR_ECHO_BOX_OPS_PORT).toBe(5003);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^HANGAR_ECHO_PORT is ignored: HANGAR_ECHO_BOX_OPS_PORT is set too/);
  });

  it("takes the secrets master keys out of the environment once loaded, keeping them in the settings", () => {
    const withKeys = defineServiceConfig("key-box", {
      HANGAR_KEY_BOX_OPS_PORT: port(4998, { description: "ops" }),
      HANGAR_SECRETS_KEY: partlySharedSettings.HANGAR_SECRETS_KEY,
      HANGAR_SECRETS_PREVIOUS_KEYS: partlySharedSettings.HANGAR_SECRETS_PREVIOUS_KEYS,
    });
    const saved = { ...process.env };
    try {
      process.env.HANGAR_SECRETS_KEY = "current-key";
      process.env.HANGAR_SECRETS_PREVIOUS_KEYS = "old-key";
      const settings = withKeys.load(process.env, () => {});
      expect(settings.HANGAR_SECRETS_KEY).toBe("current-key");
      expect(settings.HANGAR_SECRETS_PREVIOUS_KEYS).toEqual(["old-key"]);
      expect(process.env.HANGAR_SECRETS_KEY).toBeUndefined();
      expect(process.env.HANGAR_SECRETS_PREVIOUS_KEYS).toBeUndefined();
    } finally {
      for (const key of ["HANGAR_SECRETS_KEY", "HANGAR_SECRETS_PREVIOUS_KEYS"]) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });

  it("refuses bad values, naming each variable, its value and what it wants", () => {
    const bad = () => load({ HANGAR_ECHO_BOX_OPS_PORT: "70000", HANGAR_ECHO_BOX_MODE: "shout" });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/^hangar-echo-box: bad settings/);
    expect(bad).toThrow(/HANGAR_ECHO_BOX_OPS_PORT="70000": .*65535/);
    expect(bad).toThrow(/HANGAR_ECHO_BOX_MODE="shout": .*"loud"\|"quiet"/);
  });

  it("names the old variable when the bad value came from it", () => {
    expect(() => load({ HANGAR_ECHO_PORT: "x" })).toThrow(/HANGAR_ECHO_PORT="x"/);
  });

  it("refuses a definition whose own setting breaks the naming rule, or without an ops port", () => {
    expect(() =>
      defineServiceConfig("echo-box", {
        HANGAR_ECHO_BOX_OPS_PORT: port(0, { description: "ops" }),
        HANGAR_ECHO_MODE: setting(z.string().optional(), { description: "x" }),
      }),
    ).toThrow(/HANGAR_ECHO_MODE does not start with HANGAR_ECHO_BOX_/);
    expect(() => defineServiceConfig("echo-box", {})).toThrow(/no HANGAR_ECHO_BOX_OPS_PORT/);
  });

  it("turns values into the environment that sets them, and refuses names it does not have", () => {
    expect(
      config.toEnv({ HANGAR_ECHO_BOX_OPS_PORT: 5004, HANGAR_REGION: "ams", HANGAR_NATS_CREDS: undefined }),
    ).toEqual({
      HANGAR_ECHO_BOX_OPS_PORT: "5004",
      HANGAR_REGION: "ams",
    });
    expect(() => config.toEnv({ HANGAR_ECHO_PORT: 1 } as never)).toThrow(
      /HANGAR_ECHO_PORT is not a setting of echo-box/,
    );
  });

  it("renders the docs table: shared settings once, then the service's own with default and old name", () => {
    const table = settingsTable([config]);
    expect(table).toContain("| `HANGAR_NATS_URL` | all | `nats://127.0.0.1:4222` |");
    expect(table).toContain("| `HANGAR_ECHO_BOX_OPS_PORT` | echo-box | `4999` | ops | `HANGAR_ECHO_PORT` |");
    expect(table).toContain("| `HANGAR_NATS_CREDS` | all | unset |");
    expect(table.match(/HANGAR_NATS_URL/g)).toHaveLength(1);
  });

  it("lets a service read a partly shared setting, shown once in the docs with its readers", () => {
    const reader = (name: string) =>
      defineServiceConfig(name, {
        [`HANGAR_${name.toUpperCase()}_OPS_PORT`]: port(0, { description: "ops" }),
        HANGAR_DIR_IMAGE_ROOTS: partlySharedSettings.HANGAR_DIR_IMAGE_ROOTS,
      });
    const [one, two] = [reader("one"), reader("two")];
    expect(one.load({ HANGAR_DIR_IMAGE_ROOTS: "/srv/a:/srv/b/" }).HANGAR_DIR_IMAGE_ROOTS).toEqual([
      "/srv/a",
      "/srv/b",
    ]);
    expect(one.load({}).HANGAR_DIR_IMAGE_ROOTS).toEqual([]);
    const table = settingsTable([one, config, two]);
    expect(table).toContain("| `HANGAR_DIR_IMAGE_ROOTS` | one, two | unset (dir: images off) |");
    expect(table.match(/HANGAR_DIR_IMAGE_ROOTS/g)).toHaveLength(1);
  });

  it("refuses / as a dir: image root when the service starts", () => {
    const gatewayLike = defineServiceConfig("gw", {
      HANGAR_GW_OPS_PORT: port(0, { description: "ops" }),
      HANGAR_DIR_IMAGE_ROOTS: partlySharedSettings.HANGAR_DIR_IMAGE_ROOTS,
    });
    expect(() => gatewayLike.load({ HANGAR_DIR_IMAGE_ROOTS: "/srv/examples:/" })).toThrow(
      'HANGAR_DIR_IMAGE_ROOTS="/srv/examples:/": / cannot be a dir: image root: list the folders to run',
    );
  });

  it("refuses an unprefixed setting that is not a partly shared one", () => {
    expect(() =>
      defineServiceConfig("three", {
        HANGAR_THREE_OPS_PORT: port(0, { description: "ops" }),
        HANGAR_DIR_IMAGE_ROOTS: setting(z.string().optional(), { description: "a copy" }),
      }),
    ).toThrow("three's setting HANGAR_DIR_IMAGE_ROOTS does not start with HANGAR_THREE_");
  });
});

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAppConfig } from "@hangar/config";
import { parse } from "smol-toml";
import { afterAll, describe, expect, it } from "vitest";
import { runCliIn } from "../../test/run-cli.js";
import { showText, validateReport } from "./app-config-commands.js";

const OLD_FLY_TOML = `app = "notes"
kill_timeout = 5
processes = []

[[services]]
  internal_port = "8080"
  concurrency = "20,25"
  [[services.ports]]
    port = "443"
    handlers = ["tls", "http"]
  [[services.ports]]
    start_port = 9000
    end_port = 9010
  [[services.tcp_checks]]
    interval = 10000
`;

const folders: string[] = [];
afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

/** A folder holding `files`, where the CLI runs. */
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "hangar-config-cmd-"));
  folders.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe("validateReport", () => {
  it('says "valid", and lists the warnings when there are some', () => {
    expect(validateReport({ file: "/a/fly.toml", ...parseAppConfig('app = "a"\n', "fly.toml") })).toBe(
      "fly.toml is valid\n",
    );
    const loaded = {
      file: "/a/fly.toml",
      ...parseAppConfig('app = "a"\n[build]\nbuilder = "paketobuildpacks/builder:base"\n', "fly.toml"),
    };
    expect(validateReport(loaded)).toBe(
      "fly.toml is valid, with 1 warning:\n  fly.toml:3: build.builder is not supported by Hangar (ignored)\n",
    );
  });
});

describe("showText", () => {
  it("prints the normalised config as TOML that reads back the same, or as JSON", () => {
    const { config } = parseAppConfig(OLD_FLY_TOML, "fly.toml");
    expect(parse(showText(config, false))).toEqual(JSON.parse(showText(config, true)));
    expect(JSON.parse(showText(config, true)).services[0]).toEqual({
      internal_port: 8080,
      concurrency: { type: "requests", soft_limit: 20, hard_limit: 25 },
      ports: [
        { port: 443, handlers: ["tls", "http"] },
        { start_port: 9000, end_port: 9010 },
      ],
      tcp_checks: [{ interval: "10s" }],
    });
  });
});

describe("hangar config validate / show", () => {
  it("validates the fly.toml of the folder: exit 0 and valid", async () => {
    const res = await runCliIn(folder({ "fly.toml": OLD_FLY_TOML }), ["config", "validate"]);
    expect(res).toMatchObject({ code: 0, stdout: "fly.toml is valid\n" });
  });

  it("exits 1 with each error and its file:line", async () => {
    const dir = folder({ "fly.toml": 'app = "a"\n\n[http_service]\n  internal_port = "web"\n' });
    const res = await runCliIn(dir, ["config", "validate"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("fly.toml:4: http_service.internal_port: expected a number, got string");
  });

  it("says the verdict as JSON with --json: valid with the warnings, or not with each error's line, exit 1", async () => {
    const good = await runCliIn(
      folder({ "fly.toml": 'app = "a"\n[build]\nbuilder = "paketobuildpacks/builder:base"\n' }),
      ["config", "validate", "--json"],
    );
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({
      valid: true,
      app: "a",
      warnings: ["fly.toml:3: build.builder is not supported by Hangar (ignored)"],
      errors: [],
    });
    const bad = await runCliIn(
      folder({
        "fly.toml": 'app = "a"\n[environment]\n  X = "1"\n\n[http_service]\n  internal_port = "web"\n',
      }),
      ["config", "validate", "--json"],
    );
    expect(bad.code).toBe(1);
    // The app and what was found before the errors are said too.
    expect(JSON.parse(bad.stdout)).toMatchObject({
      valid: false,
      kind: "invalid",
      app: "a",
      warnings: ["fly.toml:2: unknown key environment (ignored)"],
      errors: [{ path: "http_service.internal_port", line: 6, message: "expected a number, got string" }],
    });
    expect(bad.stderr).toBe("");
    const none = await runCliIn(folder({}), ["config", "validate", "--json"]);
    expect(none.code).toBe(1);
    expect(JSON.parse(none.stdout)).toMatchObject({
      file: null,
      valid: false,
      kind: "missing",
      errors: [{ message: "no hangar.toml or fly.toml found here" }],
    });
  });

  it("a command that takes the app from the file refuses a template's app, saying to pass -a", async () => {
    const res = await runCliIn(folder({ "fly.toml": 'app = "$APP_NAME$"\n' }), ["events"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/app "\$APP_NAME\$" is not an app name/);
    expect(res.stderr).toMatch(/pass -a <app>/);
  });

  it("takes the file from -c, and prefers hangar.toml to fly.toml", async () => {
    const dir = folder({ "hangar.toml": 'app = "from-hangar"\n', "other.toml": 'app = "other"\n' });
    const shown = await runCliIn(dir, ["config", "show", "--json"]);
    expect(JSON.parse(shown.stdout)).toEqual({ app: "from-hangar" });
    const other = await runCliIn(dir, ["config", "show", "-c", "other.toml", "--json"]);
    expect(JSON.parse(other.stdout)).toEqual({ app: "other" });
  });

  it("shows warnings on stderr, keeping stdout parseable", async () => {
    const res = await runCliIn(
      folder({ "fly.toml": 'app = "a"\n[build]\nbuilder = "paketobuildpacks/builder:base"\n' }),
      ["config", "show", "--json"],
    );
    expect(JSON.parse(res.stdout)).toEqual({ app: "a", build: { builder: "paketobuildpacks/builder:base" } });
    expect(res.stderr).toBe("warning: fly.toml:3: build.builder is not supported by Hangar (ignored)\n");
  });

  it("says so when there is no config file", async () => {
    const res = await runCliIn(folder({}), ["config", "validate"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("no hangar.toml or fly.toml found here");
  });
});

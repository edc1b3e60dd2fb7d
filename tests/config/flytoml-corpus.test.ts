import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  AppConfigError,
  CheckWithoutPortError,
  defaultProcessGroup,
  machineConfigFromApp,
  type ParsedAppConfig,
  parseAppConfig,
  processGroups,
  UNSUPPORTED_KEYS,
} from "@hangar/config";
import { describe, expect, it } from "vitest";
import {
  MACHINE_FIELDS,
  MACHINES,
  PARSED,
  PROCESS_GROUPS,
  REFUSED,
} from "./flytoml-corpus/flyctl-expectations.js";
import { PUBLIC_FILES, UNRECOGNISED_BY_FLYCTL } from "./flytoml-corpus/public-files.js";

// Acceptance 1 of issue 19: the fly.toml files of flyctl's internal/appconfig/testdata load as flyctl's
// tests say they load, with the machine config flyctl's tests expect; real fly.toml files from public
// projects load with no warning but those for keys Hangar documents it does not act on yet.

const CORPUS = join(import.meta.dirname, "flytoml-corpus");
const FLYCTL = join(CORPUS, "flyctl");
const PUBLIC = join(CORPUS, "public");

const tomlFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".toml"))
    .sort();
const load = (dir: string, file: string): ParsedAppConfig =>
  parseAppConfig(readFileSync(join(dir, file), "utf8"), file);

/** The warnings Hangar documents: a key it loads but does not act on yet, or a value read as flyctl reads it. */
function isDocumentedWarning(warning: string): boolean {
  const unsupported = / ([\w.[\]-]+)(?: \(and \d+ more\))? is not supported by Hangar \(ignored\)$/.exec(
    warning,
  );
  if (unsupported) {
    const key = (unsupported[1] as string).replace(/\[\d+\]/g, "");
    // [[compute]] and experimental.metrics_port are written where flyctl reads vm and metrics.
    const asRead = key.replace(/^compute\b/, "vm").replace(/^experimental\.metrics_(port|path)$/, "metrics");
    return UNSUPPORTED_KEYS.includes(asRead);
  }
  return (
    / is not one of .*: .* \(ignored\)$/.test(warning) ||
    / has no type: the check is not run \(ignored\)$/.test(warning) ||
    / flyctl reads a bare number here as nanoseconds; /.test(warning)
  );
}

/** Go's omitempty leaves out a false force_https (a plain bool in fly.MachinePort); so do flyctl's expectations. */
function withoutFalseForceHttps(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutFalseForceHttps);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key, v]) => !(key === "force_https" && v === false))
      .map(([key, v]) => [key, withoutFalseForceHttps(v)]),
  );
}

describe("flyctl's internal/appconfig/testdata", () => {
  const refused = new Set(REFUSED.map((r) => r.file));

  it.each(tomlFiles(FLYCTL).filter((f) => !refused.has(f)))(
    "%s loads, with documented warnings only",
    (file) => {
      const { warnings } = load(FLYCTL, file);
      expect(warnings.filter((w) => !isDocumentedWarning(w))).toEqual([]);
    },
  );

  it.each(REFUSED)("$file, which flyctl refuses ($goTest), is refused with its line", ({ file, errors }) => {
    let error: unknown;
    try {
      load(FLYCTL, file);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(AppConfigError);
    for (const line of errors) expect((error as Error).message.split("\n")).toContain(line);
  });

  it.each(PARSED)("$file parses as $goTest states", ({ file, config: expected }) => {
    const { config } = load(FLYCTL, file);
    for (const [key, value] of Object.entries(expected)) {
      expect({ [key]: (config as Record<string, unknown>)[key] }).toEqual({ [key]: value ?? undefined });
    }
  });

  it.each(PROCESS_GROUPS)("$file has the process groups of $goTest", ({ file, groups, defaultGroup }) => {
    const { config } = load(FLYCTL, file);
    expect(processGroups(config)).toEqual(groups);
    expect(defaultProcessGroup(config)).toBe(defaultGroup);
  });

  it.each(MACHINES)(
    "$file, group $group: the machine config of $goTest",
    ({ file, group, machine, whole }) => {
      const { config } = load(FLYCTL, file);
      const got = machineConfigFromApp(
        config,
        "registry.example/app:1",
        group ? { processGroup: group } : {},
      );
      expect(got.metadata?.fly_process_group).toBe(group ?? defaultProcessGroup(config));
      const fields = whole ? MACHINE_FIELDS : (Object.keys(machine) as (typeof MACHINE_FIELDS)[number][]);
      for (const field of fields) {
        expect({ [field]: withoutFalseForceHttps(got[field]) }).toEqual({
          [field]: machine[field] ?? undefined,
        });
      }
    },
  );

  it("refuses a top-level check without a port when the group has no http_service (TestToMachineConfig_defaultV2flytoml)", () => {
    const { config } = load(FLYCTL, "tomachine-default-for-new-apps.toml");
    expect(() => machineConfigFromApp({ ...config, http_service: undefined }, "img")).toThrow(
      CheckWithoutPortError,
    );
    expect(() => machineConfigFromApp({ ...config, http_service: undefined }, "img")).toThrow(
      "has no port set",
    );
  });
});

describe("fly.toml files of public projects", () => {
  it("are each listed with their source and licence in README.md, and the list is the folder", () => {
    const readme = readFileSync(join(CORPUS, "README.md"), "utf8");
    expect(PUBLIC_FILES.map((f) => f.file).sort()).toEqual(tomlFiles(PUBLIC));
    for (const entry of PUBLIC_FILES) {
      expect(readme).toContain(entry.file);
      expect(readme).toContain(entry.commit);
    }
    expect(PUBLIC_FILES.length).toBeGreaterThanOrEqual(20);
  });

  it.each(PUBLIC_FILES)(
    "$file ($kind) loads with no warning but for keys Hangar documents it does not act on yet",
    (entry) => {
      const { warnings } = load(PUBLIC, entry.file);
      expect(warnings).toEqual(entry.warnings);
      for (const warning of warnings) {
        const unknown = / unknown key ([\w.[\]-]+) \(ignored\)$/.exec(warning);
        if (unknown) expect(UNRECOGNISED_BY_FLYCTL).toContain((unknown[1] as string).replace(/\[\d+\]/g, ""));
        else expect(isDocumentedWarning(warning)).toBe(true);
      }
    },
  );
});

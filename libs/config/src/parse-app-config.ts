import { parse, TomlError } from "smol-toml";
import type { z } from "zod";
import { type AppConfig, AppConfigSchema, DEPLOY_STRATEGIES, UNSUPPORTED_KEYS } from "./app-config.js";
import { EDGE_MACHINE_KEYS } from "./edge.js";
import { normaliseFlyToml } from "./fly-toml-shapes.js";
import { isFramingHeader } from "./response-headers.js";
import { STOP_SIGNALS } from "./signals.js";
import { TomlLocator, type TomlPath } from "./toml-locator.js";

/** One problem in an app config file: where, and what is wrong. */
export interface AppConfigIssue {
  /** The key path as written in the file, e.g. "services[0].internal_port"; "" for the whole file. */
  path: string;
  line?: number;
  column?: number;
  message: string;
}

/** An app config file is not valid TOML (`syntax`) or has values of the wrong type (`invalid`). */
export class AppConfigError extends Error {
  override name = "AppConfigError";
  constructor(
    readonly code: "syntax" | "invalid",
    readonly file: string,
    readonly issues: AppConfigIssue[],
    detail?: string,
    /** A file that is TOML but not a valid config: its `app`, and the warnings found before the errors. */
    readonly found: { app: string | null; warnings: string[] } = { app: null, warnings: [] },
  ) {
    super([...issues.map((issue) => formatIssue(file, issue)), ...(detail ? [detail] : [])].join("\n"));
  }
}

/** "fly.toml:7: http_service.internal_port: expected a number, got string". */
function formatIssue(file: string, issue: AppConfigIssue): string {
  const where = [file, issue.line, issue.column].filter((part) => part !== undefined).join(":");
  return issue.path === "" ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

/** The outcome of parseAppConfig: the config, and what in it was ignored. */
export interface ParsedAppConfig {
  config: AppConfig;
  /** "fly.toml:12: unknown key http_service.foo (ignored)", one per ignored key. */
  warnings: string[];
}

/**
 * Parses and validates fly.toml / hangar.toml text as flyctl reads it (older shapes converted by
 * normaliseFlyToml). Unknown keys, and keys Hangar does not act on yet, become warnings; values of the
 * wrong type, and TOML syntax errors, throw an AppConfigError naming the file, line and key path of each
 * problem.
 */
export function parseAppConfig(text: string, fileName: string): ParsedAppConfig {
  let raw: Record<string, unknown>;
  try {
    raw = parse(text) as Record<string, unknown>;
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const message = (err.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
    const issue = { path: "", line: err.line, column: err.column, message };
    throw new AppConfigError("syntax", fileName, [issue], err.codeblock);
  }
  const locator = new TomlLocator(text);
  const { origins, notes } = normaliseFlyToml(raw);
  // As written in the file: item i of a list flyctl gathers from several tables (`[[compute]]` into vm,
  // `[mount]` into mounts, a single `[mounts]` table) came from origins[key][i].
  const asWritten = (path: TomlPath): TomlPath => {
    const [key, index, ...rest] = path;
    // A whole gathered list is where its first item was written.
    if (path.length === 1 && typeof key === "string") {
      const first = origins.get(key)?.[0];
      return first ? first.filter((part) => typeof part === "string") : path;
    }
    const from = typeof key === "string" && typeof index === "number" ? origins.get(key)?.[index] : undefined;
    return from ? [...from, ...rest] : path;
  };
  const lineOf = (path: TomlPath) => locator.lineOf(asWritten(path));

  const warnings: { line: number | undefined; text: string }[] = [];
  const warnAt = (line: number | undefined, text: string) =>
    warnings.push({ line, text: `${line === undefined ? fileName : `${fileName}:${line}`}: ${text}` });
  const warn = (path: TomlPath, text: string) => warnAt(lineOf(path), text);
  for (const note of notes) warnAt(locator.lineOf(note.path), `${displayPath(note.path)} ${note.text}`);
  for (const choice of dropUnknownChoices(raw)) {
    warn(choice.path, `${displayPath(asWritten(choice.path))} ${choice.text}`);
  }
  let result = AppConfigSchema.safeParse(raw, { reportInput: true });
  const unknown = result.success ? [] : result.error.issues.filter((i) => i.code === "unrecognized_keys");
  if (unknown.length > 0) {
    for (const issue of unknown) {
      const table = walk(raw, issue.path) as Record<string, unknown>;
      for (const key of issue.keys) {
        const path = [...issue.path, key] as TomlPath;
        warn(path, `unknown key ${displayPath(asWritten(path))} (ignored)`);
        delete table[key];
      }
    }
    result = AppConfigSchema.safeParse(raw, { reportInput: true });
  }
  if (!result.success) {
    const issues = result.error.issues.map((issue) => {
      const path = issue.path as TomlPath;
      const line = lineOf(path);
      return {
        path: displayPath(asWritten(path)),
        ...(line !== undefined ? { line } : {}),
        message: describeIssue(issue),
      };
    });
    throw new AppConfigError("invalid", fileName, byLine(issues), undefined, {
      app: typeof raw.app === "string" ? raw.app : null,
      warnings: byLine(warnings).map((w) => w.text),
    });
  }
  // One warning a key, at its first place: the user learns what Hangar leaves out, not how often.
  for (const key of UNSUPPORTED_KEYS) {
    const [first, ...others] = present(raw, key.split("."));
    if (first === undefined) continue;
    const more = others.length > 0 ? ` (and ${others.length} more)` : "";
    warn(first, `${displayPath(asWritten(first))}${more} is not supported by Hangar (ignored)`);
  }
  // An edge app runs in the proxies: what would give it machines is kept but does nothing.
  if (result.data.edge !== undefined) {
    for (const key of EDGE_MACHINE_KEYS) {
      const [first] = present(raw, key.split("."));
      if (first === undefined) continue;
      warn(
        first,
        `${displayPath(asWritten(first))} is not used by an edge app ([edge] runs in the proxies, with no machines) (ignored)`,
      );
    }
  }
  // Response headers that frame the response are the proxy's: the proxy leaves them out (response-headers.ts).
  const responseHeaders = (at: TomlPath, headers: Record<string, unknown> | undefined) => {
    for (const name of Object.keys(headers ?? {})) {
      if (!isFramingHeader(name)) continue;
      const path = [...at, name];
      warn(
        path,
        `${displayPath(asWritten(path))}: the proxy frames responses itself; this header is not set or removed (ignored)`,
      );
    }
  };
  responseHeaders(
    ["http_service", "http_options", "response", "headers"],
    result.data.http_service?.http_options?.response?.headers,
  );
  for (const [i, s] of (result.data.services ?? []).entries()) {
    for (const [j, p] of (s.ports ?? []).entries()) {
      responseHeaders(
        ["services", i, "ports", j, "http_options", "response", "headers"],
        p.http_options?.response?.headers,
      );
    }
  }
  return { config: result.data, warnings: byLine(warnings).map((w) => w.text) };
}

/** A value flyctl reads without a check (it refuses it at deploy, if at all) that Hangar has no meaning for. */
interface DroppedChoice {
  path: TomlPath;
  text: string;
}

const CONCURRENCY_TYPES = ["connections", "requests"];

/**
 * Removes values flyctl loads but that name nothing Hangar knows (a deploy strategy, a concurrency type,
 * a check type), so that the file still loads, and says what Hangar does instead.
 */
function dropUnknownChoices(raw: Record<string, unknown>): DroppedChoice[] {
  const dropped: DroppedChoice[] = [];
  const check = (table: unknown, key: string, at: TomlPath, known: readonly string[], instead: string) => {
    if (table === null || typeof table !== "object") return;
    const record = table as Record<string, unknown>;
    const value = record[key];
    if (typeof value !== "string" || known.includes(value)) return;
    const text = `${JSON.stringify(value)} is not one of ${known.join(", ")}: ${instead} (ignored)`;
    dropped.push({ path: [...at, key], text });
    delete record[key];
  };
  check(raw.deploy, "strategy", ["deploy"], DEPLOY_STRATEGIES, "Hangar deploys with its default strategy");
  // flyctl passes any kill_signal to the machines' stop_config; an empty one is no signal (the default).
  if (raw.kill_signal === "") delete raw.kill_signal;
  check(raw, "kill_signal", [], STOP_SIGNALS, "machines are stopped with SIGINT, the default");
  const service = raw.http_service as Record<string, unknown> | undefined;
  check(
    service?.concurrency,
    "type",
    ["http_service", "concurrency"],
    CONCURRENCY_TYPES,
    "connections are counted",
  );
  // A top-level check of another type ("script", from Nomad-era files) or none: flyctl loads it and
  // refuses it at deploy; Hangar loads the file and leaves the check out.
  if (raw.checks !== null && typeof raw.checks === "object" && !Array.isArray(raw.checks)) {
    const checks = raw.checks as Record<string, unknown>;
    for (const [name, c] of Object.entries(checks)) {
      const type = (c as Record<string, unknown> | null)?.type;
      if (type === "http" || type === "tcp" || c === null || typeof c !== "object") continue;
      const what =
        type === undefined ? "has no type" : `type ${JSON.stringify(type)} is not one of http, tcp`;
      dropped.push({ path: ["checks", name], text: `${what}: the check is not run (ignored)` });
      delete checks[name];
    }
    if (Object.keys(checks).length === 0) delete raw.checks;
  }
  if (Array.isArray(raw.services)) {
    raw.services.forEach((s: Record<string, unknown> | undefined, i) => {
      check(
        s?.concurrency,
        "type",
        ["services", i, "concurrency"],
        CONCURRENCY_TYPES,
        "connections are counted",
      );
    });
  }
  return dropped;
}

/** Sorted by line, those without one last, so problems read in file order. */
function byLine<T extends { line?: number | undefined }>(items: T[]): T[] {
  return [...items].sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER));
}

function walk(value: unknown, path: readonly PropertyKey[]): unknown {
  let at = value;
  for (const key of path) at = (at as Record<PropertyKey, unknown>)[key];
  return at;
}

/** The concrete paths where a dotted key is set (to something other than an empty array), through arrays. */
function present(value: unknown, keys: readonly string[], at: (string | number)[] = []): TomlPath[] {
  if (keys.length === 0) return Array.isArray(value) && value.length === 0 ? [] : [at];
  if (Array.isArray(value)) return value.flatMap((item, i) => present(item, keys, [...at, i]));
  if (value === null || typeof value !== "object") return [];
  const [key, ...rest] = keys as [string, ...string[]];
  const child = (value as Record<string, unknown>)[key];
  return child === undefined ? [] : present(child, rest, [...at, key]);
}

/** "services[0].ports[1].port". */
function displayPath(path: TomlPath): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? part : `.${part}`;
  }
  return out;
}

const EXPECTED: Record<string, string> = {
  number: "a number",
  int: "an integer",
  string: "a string",
  boolean: "a boolean",
  array: "an array",
  object: "a table",
  record: "a table",
};

/** The TOML type of a value, as the user wrote it. */
function tomlType(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "array";
  if (value instanceof Date) return "datetime";
  if (value !== null && typeof value === "object") return "table";
  return typeof value;
}

/** A scalar shown as written; anything else by its type. */
function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return tomlType(value);
}

function expectation(issue: z.core.$ZodIssue): string | undefined {
  if (issue.code === "invalid_type") return EXPECTED[issue.expected] ?? issue.expected;
  if (issue.code === "invalid_value")
    return `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  return undefined;
}

function orList(items: string[]): string {
  return items.length <= 1
    ? (items[0] ?? "")
    : `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const input = issue.input;
  switch (issue.code) {
    case "invalid_type":
      if (input === undefined) return `required, expected ${expectation(issue)}`;
      return `expected ${expectation(issue)}, got ${typeof input === "number" ? input : tomlType(input)}`;
    case "invalid_value":
      return `expected ${expectation(issue)}, got ${shown(input)}`;
    case "invalid_union": {
      const options = issue.errors.map((branch) => branch.find((i) => i.path.length === 0));
      const expected = options.map((i) => (i ? expectation(i) : undefined));
      if (expected.every((e): e is string => e !== undefined)) {
        return `expected ${orList(expected)}, got ${shown(input)}`;
      }
      return `${issue.message}, got ${shown(input)}`;
    }
    case "too_small":
      if (issue.origin === "string") return "expected a non-empty string";
      if (issue.origin === "array") return `expected at least ${issue.minimum} items`;
      return `expected at least ${issue.minimum}, got ${shown(input)}`;
    case "too_big":
      return `expected at most ${issue.maximum}, got ${shown(input)}`;
    default:
      return `${issue.message}, got ${shown(input)}`;
  }
}

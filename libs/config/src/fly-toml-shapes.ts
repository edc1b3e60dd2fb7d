import { formatGoDuration } from "./duration.js";
import type { TomlPath } from "./toml-locator.js";

// Older fly.toml files use shapes flyctl still reads and converts before decoding (its appconfig
// patches.go): `[[env]]`, `[[processes]]` with name and command, `processes = []`, string ports,
// "soft,hard" concurrency, header arrays, bare-number durations, `[[compute]]`, `[mount]` and so on.
// Here they become the one shape AppConfigSchema reads, with flyctl's meaning. A value none of these
// shapes explains is left as it is, so that the schema reports it with its line.

/** A table flyctl reads from several keys into one list: where each item came from, as written. */
export type Origins = Map<string, TomlPath[]>;

/** A value read as flyctl reads it, worth telling the user about. */
export interface ShapeNote {
  /** Where, as written in the file. */
  path: TomlPath;
  /** What follows the key path in the warning. */
  text: string;
}

/** The document in the shape AppConfigSchema reads, and what was converted on the way. */
export interface FlyTomlShapes {
  raw: Record<string, unknown>;
  /** For the lists gathered from several tables (vm, mounts, metrics, services): item i came from origins[key][i]. */
  origins: Origins;
  notes: ShapeNote[];
}

type Table = Record<string, unknown>;

const NS_PER = { ns: 1, ms: 1e6, s: 1e9 } as const;

function isTable(value: unknown): value is Table {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Date);
}

/** A date or time smol-toml parsed (its TomlDate): toISOString gives it as the TOML wrote it. */
interface TomlDateLike extends Date {
  isLocal(): boolean;
  isDate(): boolean;
  isTime(): boolean;
}

/** Seconds as Go prints them: the fraction's trailing zeros left out, and the dot with them. */
const goSeconds = (hms: string) => hms.replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");

/**
 * Go's "%v" of what go-toml decodes a TOML date or time into: an offset date-time is a time.Time
 * ("2024-01-02 03:04:05 +0000 UTC", a fixed zone without a name for another offset), a local date,
 * time or date-time its own String ("2024-01-02", "03:04:05", "2024-01-02T03:04:05").
 */
function goTimeText(d: TomlDateLike): string {
  const iso = d.toISOString();
  if (d.isDate() || d.isTime()) return d.isTime() ? goSeconds(iso) : iso;
  const [date, rest = ""] = iso.split("T");
  if (d.isLocal()) return `${date}T${goSeconds(rest)}`;
  const zone = /(Z|[+-]\d\d:\d\d)$/.exec(rest)?.[1] ?? "Z";
  const time = goSeconds(rest.slice(0, rest.length - zone.length));
  if (zone === "Z") return `${date} ${time} +0000 UTC`;
  const offset = zone.replace(":", "");
  return `${date} ${time} ${offset} ${offset}`;
}

/** Go's fmt "%v" of a TOML scalar, which is how flyctl turns env and header values into strings. */
function asString(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(asString).join(" ")}]`;
  if (value instanceof Date && typeof (value as Partial<TomlDateLike>).isLocal === "function")
    return goTimeText(value as TomlDateLike);
  return String(value);
}

/**
 * A table or a list of tables under `key`, as a list with where each item came from. A list item that is
 * not a table is kept, so that the schema reports it.
 */
function listOfTables(value: unknown, at: TomlPath): { items: unknown[]; from: TomlPath[] } {
  if (Array.isArray(value)) return { items: value, from: value.map((_, i) => [...at, i]) };
  return { items: [value], from: [at] };
}

/**
 * Converts the fly.toml shapes flyctl reads into the ones AppConfigSchema reads. `raw` is the parsed TOML
 * and is changed in place.
 */
export function normaliseFlyToml(raw: Table): FlyTomlShapes {
  const origins: Origins = new Map();
  const notes: ShapeNote[] = [];
  // Where a table flyctl moves to the top level was written (experimental.metrics_port into [metrics]).
  const moved = new Map<string, TomlPath>();
  const duration = durationReader(notes);

  // flyctl reads `app = ""` as no app name (the CLI's -a then names it).
  if (raw.app === "") delete raw.app;
  patchEnv(raw);
  patchServices(raw, origins, duration);
  patchProcesses(raw);
  patchExperimental(raw, duration, moved);
  patchTopLevelChecks(raw, duration);
  const gather = gatherer(raw, origins, moved);
  gather("vm", ["compute", "computes", "vm"]);
  for (const vm of (raw.vm as unknown[] | undefined) ?? []) {
    if (isTable(vm) && typeof vm.memory === "number") vm.memory = String(vm.memory);
  }
  gather("mounts", ["mount", "mounts"]);
  for (const mount of (raw.mounts as unknown[] | undefined) ?? []) {
    if (!isTable(mount)) continue;
    if (typeof mount.initial_size === "number") mount.initial_size = String(mount.initial_size);
    // flyctl's Mount has plain Go fields, so 0 and "" are unset: `fly launch` in early 2024 wrote
    // `auto_extend_size_threshold = 0` into every [[mounts]], and flyctl's checks skip it.
    if (mount.auto_extend_size_threshold === 0) delete mount.auto_extend_size_threshold;
    for (const key of ["initial_size", "auto_extend_size_increment", "auto_extend_size_limit"]) {
      if (mount[key] === "") delete mount[key];
    }
  }
  gather("metrics", ["metric", "metrics"]);
  // flyctl wants these as lists; one table is read as a list of one, as for [mounts].
  for (const key of ["restart", "statics", "files"]) gather(key, [key]);
  if (raw.kill_timeout !== undefined) duration(raw, "kill_timeout", ["kill_timeout"], "s");
  patchBuild(raw);
  // flyctl drops these tables when empty (GQL GetConfig wrote an empty [experimental] into every file).
  for (const key of ["experimental", "build"]) {
    if (isTable(raw[key]) && Object.keys(raw[key]).length === 0) delete raw[key];
  }
  patchNanosecondDurations(raw, duration);
  return { raw, origins, notes };
}

/** `[env]` or `[[env]]` (merged in order); values that are not strings become strings. */
function patchEnv(raw: Table): void {
  if (Array.isArray(raw.env)) {
    const env: Table = {};
    for (const part of raw.env) if (isTable(part)) Object.assign(env, part);
    raw.env = env;
  }
  if (!isTable(raw.env)) return;
  // flyctl writes any value that is not a string with Go's "%v": `A = [1, 2]` is "[1 2]", a date
  // 2024-01-02T03:04:05Z is "2024-01-02 03:04:05 +0000 UTC".
  for (const [key, value] of Object.entries(raw.env)) {
    if (Array.isArray(value) || value instanceof Date) raw.env[key] = asString(value);
  }
}

/** `[[services]]`, also a single `[services]`; empty ones dropped, as flyctl drops them. */
function patchServices(raw: Table, origins: Origins, duration: DurationReader): void {
  if (raw.services === undefined) return;
  const { items, from } = listOfTables(raw.services, ["services"]);
  const kept: unknown[] = [];
  const keptFrom: TomlPath[] = [];
  items.forEach((service, i) => {
    const at = from[i] as TomlPath;
    if (isTable(service)) {
      if (Object.keys(service).length === 0) return;
      patchService(service, at, duration);
    }
    kept.push(service);
    keptFrom.push(at);
  });
  if (kept.length === 0) delete raw.services;
  else {
    raw.services = kept;
    origins.set("services", keptFrom);
  }
}

function patchService(service: Table, at: TomlPath, duration: DurationReader): void {
  // flyctl's Service.Protocol is a plain Go string: `protocol = ""` is the same as no protocol.
  if (service.protocol === "") delete service.protocol;
  const concurrency = service.concurrency;
  if (typeof concurrency === "string") {
    // The old "{soft},{hard}" string, which flyctl reads as request limits.
    const m = /^(-?\d+),(-?\d+)$/.exec(concurrency);
    if (m) service.concurrency = { type: "requests", soft_limit: Number(m[1]), hard_limit: Number(m[2]) };
  }
  if (isTable(service.ports)) service.ports = [service.ports];
  if (Array.isArray(service.ports)) {
    for (const port of service.ports) {
      if (isTable(port) && port.port !== undefined) port.port = integer(port.port);
    }
  }
  if (service.internal_port !== undefined) service.internal_port = integer(service.internal_port);
  for (const kind of ["tcp_checks", "http_checks"]) {
    if (service[kind] === undefined) continue;
    const { items, from } = listOfTables(service[kind], [...at, kind]);
    items.forEach((check, i) => {
      if (isTable(check)) patchCheck(check, from[i] as TomlPath, duration, "ms");
    });
    if (items.length === 0) delete service[kind];
    else service[kind] = items;
  }
}

/** A port written as a string ("8080") is a number to flyctl; anything else is left for the schema. */
function integer(value: unknown): unknown {
  if (typeof value === "string" && /^[+-]?\d+$/.test(value.trim())) return Number(value.trim());
  if (typeof value === "number" && !Number.isInteger(value)) return Math.trunc(value);
  return value;
}

/** `processes = []` is no processes; `[[processes]]` with name and command is the [processes] table. */
function patchProcesses(raw: Table): void {
  if (!Array.isArray(raw.processes)) return;
  const processes: Record<string, string> = {};
  for (const item of raw.processes) {
    if (isTable(item) && item.name !== undefined) {
      processes[asString(item.name)] = item.command === undefined ? "" : asString(item.command);
    }
  }
  if (Object.keys(processes).length > 0) raw.processes = processes;
  else delete raw.processes;
}

/** cmd, entrypoint and exec may be one string (one argument, as flyctl reads it); old keys move out. */
/**
 * Keys older flyctl versions wrote into every fly.toml they generated (`fly launch` before Apps V2) and
 * that neither flyctl nor Fly reads any more: flyctl drops them without a word, and so does Hangar.
 */
export const LEGACY_EXPERIMENTAL_KEYS = ["allowed_public_ports", "private_network"] as const;

function patchExperimental(raw: Table, duration: DurationReader, moved: Map<string, TomlPath>): void {
  const experimental = raw.experimental;
  if (!isTable(experimental)) return;
  for (const key of LEGACY_EXPERIMENTAL_KEYS) delete experimental[key];
  for (const key of ["cmd", "entrypoint", "exec"]) {
    if (typeof experimental[key] === "string") experimental[key] = [experimental[key]];
  }
  if (experimental.kill_timeout !== undefined) {
    if (raw.kill_timeout === undefined) {
      raw.kill_timeout = experimental.kill_timeout;
      duration(raw, "kill_timeout", ["experimental", "kill_timeout"], "s");
    }
    delete experimental.kill_timeout;
  }
  const metrics: Table = {};
  for (const key of ["metrics_port", "metrics_path"]) {
    if (experimental[key] === undefined) continue;
    metrics[key.slice("metrics_".length)] = experimental[key];
    delete experimental[key];
  }
  if (raw.metrics === undefined && Object.keys(metrics).length > 0) {
    raw.metrics = metrics;
    moved.set("metrics", [
      "experimental",
      Object.keys(metrics)[0] === "port" ? "metrics_port" : "metrics_path",
    ]);
  }
}

/** `[checks.<name>]`, or the old `[[checks]]` list with a `name` in each. */
function patchTopLevelChecks(raw: Table, duration: DurationReader): void {
  let checks = raw.checks;
  if (Array.isArray(checks)) {
    const named: Table = {};
    for (const check of checks) {
      if (isTable(check) && typeof check.name === "string") {
        const { name, ...rest } = check;
        named[name] = rest;
      }
    }
    checks = named;
  }
  if (!isTable(checks)) return;
  for (const [name, check] of Object.entries(checks)) {
    if (isTable(check)) patchCheck(check, ["checks", name], duration, "ms");
  }
  if (Object.keys(checks).length === 0) delete raw.checks;
  else raw.checks = checks;
}

/** A check's durations (a bare number in `unit`, "" for none) and headers (a table, or a list of name/value). */
function patchCheck(check: Table, at: TomlPath, duration: DurationReader, unit: keyof typeof NS_PER): void {
  for (const key of ["interval", "timeout", "grace_period"]) {
    if (check[key] !== undefined) duration(check, key, [...at, key], unit);
  }
  const headers = check.headers;
  if (headers === undefined) return;
  const out: Record<string, string> = {};
  if (Array.isArray(headers)) {
    for (const header of headers) {
      if (!isTable(header) || header.name === undefined) return;
      out[asString(header.name)] = header.value === undefined ? "" : asString(header.value);
    }
  } else if (isTable(headers)) {
    for (const [name, value] of Object.entries(headers)) out[name] = asString(value);
  } else return;
  if (Object.keys(out).length === 0) delete check.headers;
  else check.headers = out;
}

/** Gathers the tables of `keys` (in flyctl's order) into one list under `into`. */
function gatherer(raw: Table, origins: Origins, moved: Map<string, TomlPath>) {
  return (into: string, keys: string[]): void => gather(raw, into, keys, origins, moved);
}

function gather(
  raw: Table,
  into: string,
  keys: string[],
  origins: Origins,
  moved: Map<string, TomlPath>,
): void {
  const items: unknown[] = [];
  const from: TomlPath[] = [];
  for (const key of keys) {
    if (raw[key] === undefined) continue;
    const list = listOfTables(raw[key], moved.get(key) ?? [key]);
    items.push(...list.items);
    from.push(...list.from);
    delete raw[key];
  }
  if (items.length > 0) {
    raw[into] = items;
    origins.set(into, from);
  }
}

function patchBuild(raw: Table): void {
  const build = raw.build;
  if (!isTable(build) || build.build_target === undefined) return;
  build["build-target"] = build.build_target;
  delete build.build_target;
}

/**
 * Durations flyctl decodes with fly.Duration alone, which reads a bare number as nanoseconds: the checks
 * of http_service and the timeouts of [deploy].
 */
function patchNanosecondDurations(raw: Table, duration: DurationReader): void {
  const service = raw.http_service;
  if (isTable(service) && service.checks !== undefined) {
    const { items, from } = listOfTables(service.checks, ["http_service", "checks"]);
    items.forEach((check, i) => {
      if (isTable(check)) patchCheck(check, from[i] as TomlPath, duration, "ns");
    });
    service.checks = items;
  }
  const deploy = raw.deploy;
  if (isTable(deploy)) {
    for (const key of ["wait_timeout", "release_command_timeout"]) {
      if (typeof deploy[key] === "number") duration(deploy, key, ["deploy", key], "ns");
    }
  }
}

/** Rewrites table[key], a duration, as a Go duration string: a bare number is in `unit`; "" is none. */
type DurationReader = (table: Table, key: string, at: TomlPath, unit: keyof typeof NS_PER) => void;

function durationReader(notes: ShapeNote[]): DurationReader {
  return (table, key, at, unit) => {
    const value = table[key];
    if (value === "") {
      delete table[key];
      return;
    }
    if (typeof value !== "number" || !Number.isFinite(value)) return;
    // Go truncates the number to an integer before scaling it (time.Duration(n) * unit).
    const text = formatGoDuration(Math.trunc(value) * NS_PER[unit]);
    table[key] = text;
    if (unit === "ns" && value !== 0) {
      notes.push({
        path: at,
        text: `= ${value} is ${text}: flyctl reads a bare number here as nanoseconds; write a duration such as "10s"`,
      });
    }
  };
}

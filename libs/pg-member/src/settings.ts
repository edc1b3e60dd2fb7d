import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { archiveCommand } from "./backup.js";

/** The member agent's settings, from its environment (a machine's defaults, overridable for host tests). */
export interface MemberSettings {
  /** PGDATA; its parent folder (the volume) also holds hangar-member.json and the socket folder. */
  dataDir: string;
  /** Where initdb, postgres, pg_basebackup and pg_rewind are. */
  binDir: string;
  pgPort: number;
  routerPort: number;
  controlPort: number;
  /** The address postgres, the router and the control API listen on (`::`: every address). */
  listen: string;
  /** The OS user postgres runs as when the agent is root. */
  osUser: string;
  fenceCheckMs: number;
  fenceAfterMs: number;
  memberId: string;
  operatorPassword: string;
  replPassword: string;
  agentToken: string;
  /** Extra postgresql.conf lines, separated by `;` or newlines (e.g. `shared_buffers=16MB`). */
  extraConf: string[];
  /** The machine's memory limit in bytes (cgroup v2 memory.max), undefined when there is none. */
  memoryLimit: number | undefined;
  /** archive_command: this bundle's `archive-wal` (backup.ts), run by the same node; undefined: archiving off. */
  archiveCommand: string | undefined;
}

/** Thrown for a missing or malformed setting: the agent says which and exits. */
export class SettingsError extends Error {}

/** Reads the settings from `env`; throws SettingsError naming every problem. */
export function memberSettings(env: NodeJS.ProcessEnv = process.env): MemberSettings {
  const problems: string[] = [];
  const port = (name: string, fallback: number) => {
    const value = Number(env[name] ?? fallback);
    if (!Number.isInteger(value) || value < 1 || value > 65_535) problems.push(`${name} must be a TCP port`);
    return value;
  };
  const ms = (name: string, fallback: number) => {
    const value = Number(env[name] ?? fallback);
    if (!Number.isInteger(value) || value < 50) problems.push(`${name} must be a whole number of ms >= 50`);
    return value;
  };
  const secret = (name: string) => {
    const value = env[name] ?? "";
    if (value === "") problems.push(`${name} is not set (a secret of the cluster app)`);
    return value;
  };
  const listen = env.HANGAR_PG_LISTEN ?? "::";
  if (isIP(listen) === 0)
    problems.push(`HANGAR_PG_LISTEN must be an IP address, not ${JSON.stringify(listen)}`);
  const memberId = env.FLY_MACHINE_ID ?? "";
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(memberId))
    problems.push("FLY_MACHINE_ID must be the member's machine id (1-64 letters, digits, - or _)");
  const settings: MemberSettings = {
    dataDir: env.HANGAR_PG_DATA ?? "/data/postgresql",
    binDir: env.HANGAR_PG_BIN ?? "/usr/lib/postgresql/15/bin",
    pgPort: port("HANGAR_PG_PORT", 5433),
    routerPort: port("HANGAR_PG_ROUTER_PORT", 5432),
    controlPort: port("HANGAR_PG_CONTROL_PORT", 5500),
    listen,
    osUser: env.HANGAR_PG_OS_USER ?? "postgres",
    fenceCheckMs: ms("HANGAR_PG_FENCE_CHECK_MS", 500),
    fenceAfterMs: ms("HANGAR_PG_FENCE_AFTER_MS", 3000),
    memberId,
    operatorPassword: secret("OPERATOR_PASSWORD"),
    replPassword: secret("REPL_PASSWORD"),
    agentToken: secret("HANGAR_PG_AGENT_TOKEN"),
    extraConf: (env.HANGAR_PG_CONF ?? "")
      .split(/[;\n]/)
      .map((line) => line.trim())
      .filter((line) => line !== ""),
    memoryLimit: cgroupMemoryLimit(),
    archiveCommand:
      env.HANGAR_PG_ARCHIVE === "off" || !process.argv[1]
        ? undefined
        : archiveCommand(process.execPath, process.argv[1]),
  };
  for (const line of settings.extraConf) {
    if (!/^[a-z_.]+\s*=\s*[^\n]+$/.test(line))
      problems.push(`HANGAR_PG_CONF line ${JSON.stringify(line)} is not name=value`);
  }
  if (problems.length > 0) throw new SettingsError(problems.join("; "));
  return settings;
}

/** The memory limit of the agent's cgroup (v2), or undefined: none, or not readable (a host process). */
function cgroupMemoryLimit(): number | undefined {
  try {
    const text = readFileSync("/sys/fs/cgroup/memory.max", "utf8").trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

import { readFile, stat } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import type { ExistingMachine } from "@hangar/domain";

/** A machine check as Fly's config states it. */
export interface CheckConfig {
  type: "http" | "tcp";
  port?: number;
  path?: string;
  method?: string;
  interval?: string;
  timeout?: string;
  grace_period?: string;
  headers?: Array<{ name: string; values: string[] }>;
}

/** The parts of a stored machine config the host agent acts on. */
export interface AgentConfig {
  image: string;
  env: Record<string, string>;
  init: { cmd?: string[]; entrypoint?: string[]; exec?: string[] };
  restart: { policy: "no" | "always" | "on-failure"; max_retries?: number };
  checks: Record<string, CheckConfig>;
  /** The first service's internal port: the port checks and the proxy mean. */
  internalPort: number | undefined;
  stop_config?: { signal?: string; timeout?: string | number };
  stopTimeoutS: number;
}

function durationSeconds(v: string | number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v === "number") return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) return fallback;
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return unit === "ms" ? n / 1000 : unit === "m" ? n * 60 : unit === "h" ? n * 3600 : n;
}

/**
 * Reads the stored config (validated by the gateway when it was accepted) into what the agent uses,
 * with Fly's defaults: restart on-failure, stop by SIGINT with a 5 s timeout.
 */
export function parseMachineConfig(configJson: string): AgentConfig {
  const c = JSON.parse(configJson || "{}") as Record<string, unknown> & {
    image?: string;
    env?: Record<string, string>;
    init?: AgentConfig["init"];
    restart?: Partial<AgentConfig["restart"]>;
    checks?: Record<string, CheckConfig>;
    services?: Array<{ internal_port?: number; checks?: CheckConfig[] }>;
    stop_config?: AgentConfig["stop_config"];
  };
  const checks: Record<string, CheckConfig> = { ...(c.checks ?? {}) };
  for (const [i, s] of (c.services ?? []).entries()) {
    for (const [j, check] of (s.checks ?? []).entries()) {
      checks[`servicecheck-${i}-${j}`] = { ...check, port: check.port ?? s.internal_port };
    }
  }
  return {
    image: c.image ?? "",
    env: c.env ?? {},
    init: c.init ?? {},
    restart: {
      policy: c.restart?.policy ?? "on-failure",
      ...(c.restart?.max_retries !== undefined ? { max_retries: c.restart.max_retries } : {}),
    },
    checks,
    internalPort: c.services?.[0]?.internal_port,
    ...(c.stop_config ? { stop_config: c.stop_config } : {}),
    stopTimeoutS: durationSeconds(c.stop_config?.timeout, 5),
  };
}

/** What to run for a machine: argv, folder, environment and the image reference it came from. */
export interface RunnableConfig {
  cmd: string[];
  cwd: string;
  env: Record<string, string>;
  imageRef: string;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A Node folder's default command: package.json's main, else the usual entry file names. */
async function defaultCommand(dir: string): Promise<string[]> {
  const pkgPath = join(dir, "package.json");
  if (await exists(pkgPath)) {
    const pkg = JSON.parse(await readFile(pkgPath, "utf8")) as { main?: string };
    if (pkg.main) return ["node", pkg.main];
  }
  for (const entry of ["server.js", "index.js", "main.js", "app.js", "server.mjs", "index.mjs"]) {
    if (await exists(join(dir, entry))) return ["node", entry];
  }
  throw new Error(
    `no command for ${dir}: set config.init.cmd, or give the folder a package.json "main" or a server.js/index.js`,
  );
}

/**
 * Resolves a machine's command the way Fly's init does: exec replaces everything, otherwise
 * entrypoint + cmd. `dir:<absolute path>` images run that folder as it is (development).
 */
export async function resolveRun(m: ExistingMachine): Promise<RunnableConfig> {
  const cfg = parseMachineConfig(m.configJson);
  if (!cfg.image.startsWith("dir:")) {
    throw new Error(`image ${cfg.image} cannot run yet: the process driver runs dir:<absolute path> images`);
  }
  const cwd = cfg.image.slice("dir:".length);
  if (!isAbsolute(cwd)) throw new Error(`image ${cfg.image}: the folder must be an absolute path`);
  if (!(await exists(cwd))) throw new Error(`image ${cfg.image}: folder ${cwd} does not exist on host`);
  const init = cfg.init;
  let cmd: string[];
  if (init.exec && init.exec.length > 0) cmd = init.exec;
  else if ((init.entrypoint && init.entrypoint.length > 0) || (init.cmd && init.cmd.length > 0))
    cmd = [...(init.entrypoint ?? []), ...(init.cmd ?? [])];
  else cmd = await defaultCommand(cwd);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    FLY_APP_NAME: m.app,
    FLY_MACHINE_ID: m.machineId,
    FLY_ALLOC_ID: m.machineId,
    FLY_REGION: m.region,
    FLY_IMAGE_REF: cfg.image,
    FLY_MACHINE_VERSION: m.instanceId,
    FLY_PROCESS_GROUP: "app",
    ...cfg.env,
  };
  return { cmd, cwd, env, imageRef: cfg.image };
}

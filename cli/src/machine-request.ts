import { splitShellWords } from "@hangar/config";
import type { CreateMachineRequest, MachineConfig, MachineService, RestartPolicy } from "./types.js";

/** What `hangar machine run` was asked for, after parsing. */
export interface RunOptions {
  /** Already resolved: an image reference or `dir:<absolute path>`. */
  image: string;
  name?: string;
  region?: string;
  /** The port the app listens on inside the machine; exposed by the proxy on 80 (http) and 443 (tls). */
  port?: number;
  env?: Record<string, string>;
  cpus?: number;
  memoryMb?: number;
  /** A command line, split shell-style into `config.init.cmd`. */
  cmd?: string;
  restart?: RestartPolicy;
  /** `--rm`: the machine destroys itself once its process has ended (config.auto_destroy). */
  autoDestroy?: boolean;
}

/** The one service the CLI creates: the proxy's http and https ports in front of `internalPort`. */
export function httpService(internalPort: number): MachineService {
  return {
    protocol: "tcp",
    internal_port: internalPort,
    ports: [
      { port: 80, handlers: ["http"] },
      { port: 443, handlers: ["tls", "http"] },
    ],
  };
}

/** Parses one `-e KEY=VALUE`; the value may contain `=` and may be empty. */
export function parseEnvPair(pair: string): [string, string] {
  const eq = pair.indexOf("=");
  const key = eq < 0 ? pair : pair.slice(0, eq);
  if (eq < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
    throw new Error(`expected KEY=VALUE with KEY a variable name, got "${pair}"`);
  }
  return [key, pair.slice(eq + 1)];
}

/** Builds the POST /apps/{app}/machines body; fields the user did not give are left to the platform. */
export function buildCreateMachineRequest(options: RunOptions): CreateMachineRequest {
  const config: MachineConfig = { image: options.image };
  if (options.env && Object.keys(options.env).length > 0) config.env = options.env;
  if (options.cpus !== undefined || options.memoryMb !== undefined) {
    config.guest = {
      ...(options.cpus !== undefined ? { cpus: options.cpus } : {}),
      ...(options.memoryMb !== undefined ? { memory_mb: options.memoryMb } : {}),
    };
  }
  if (options.cmd !== undefined) config.init = { cmd: splitShellWords(options.cmd) };
  if (options.restart) config.restart = { policy: options.restart };
  // As flyctl's --rm: auto_destroy, and a restart policy of "no" unless one was given (a machine
  // that would be started again never ends).
  if (options.autoDestroy) {
    config.auto_destroy = true;
    config.restart ??= { policy: "no" };
  }
  if (options.port !== undefined) config.services = [httpService(options.port)];
  return {
    ...(options.name ? { name: options.name } : {}),
    ...(options.region ? { region: options.region } : {}),
    config,
  };
}

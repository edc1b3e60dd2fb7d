import { existsSync } from "node:fs";
import type { SandboxNetwork } from "./driver/mod.js";
import { IP } from "./driver/netns.js";
import type { SandboxCapability } from "./run-spec.js";

/** HANGAR_HOST_DRIVER: how OCI images run. `dir:` images always run as plain processes. */
export type HostDriverMode = "process" | "sandbox" | "auto";

/** A HANGAR_HOST_DRIVER or HANGAR_SANDBOX_NETWORK value that is not one of the choices. */
export class InvalidHostSettingError extends Error {
  override name = "InvalidHostSettingError";
  readonly code = "INVALID_HOST_SETTING";
  constructor(variable: string, value: string, choices: readonly string[]) {
    super(`${variable}=${JSON.stringify(value)} is not one of ${choices.join(", ")}`);
  }
}

const MODES: readonly HostDriverMode[] = ["process", "sandbox", "auto"];
const NETWORKS: readonly SandboxNetwork[] = ["host", "netns"];

/** Reads HANGAR_HOST_DRIVER (default auto). */
export function parseDriverMode(value: string | undefined): HostDriverMode {
  const v = value === undefined || value === "" ? "auto" : value;
  if (!(MODES as readonly string[]).includes(v))
    throw new InvalidHostSettingError("HANGAR_HOST_DRIVER", v, MODES);
  return v as HostDriverMode;
}

/**
 * Reads HANGAR_SANDBOX_NETWORK, default netns: as on Fly, an app listens on its service's
 * internal_port whether or not it reads PORT, two machines can use the same port, and a machine
 * cannot reach the host's loopback services (NATS, Postgres). Sandboxing needs root for overlayfs
 * already, so namespaces cost nothing more. `host` shares the host's network: the app must listen
 * on $PORT, and it keeps the host's outbound network (namespaces get no NAT).
 */
export function parseSandboxNetwork(value: string | undefined): SandboxNetwork {
  const v = value === undefined || value === "" ? "netns" : value;
  if (!(NETWORKS as readonly string[]).includes(v))
    throw new InvalidHostSettingError("HANGAR_SANDBOX_NETWORK", v, NETWORKS);
  return v as SandboxNetwork;
}

/** What sandboxing needs from the host, as probed (injectable for tests). */
export interface HostProbe {
  /** bwrap's path, or undefined when bubblewrap is not installed. */
  bwrap: () => Promise<string | undefined>;
  /** Whether this process may mount overlayfs. */
  overlay: () => boolean | Promise<boolean>;
  /** Whether iproute2's `ip` is installed and this process may create network namespaces. */
  netns: () => boolean;
}

/**
 * Whether this host runs OCI images, and if not, exactly what is missing: the message every
 * MachineStartFailed of an OCI image carries on such a host.
 */
export async function sandboxCapability(
  mode: HostDriverMode,
  network: SandboxNetwork,
  probe: HostProbe,
): Promise<SandboxCapability> {
  if (mode === "process") {
    return {
      ok: false,
      reason:
        "the host agent runs with HANGAR_HOST_DRIVER=process, which runs only dir:<absolute path> images; " +
        "set HANGAR_HOST_DRIVER=auto or sandbox to run OCI images",
    };
  }
  const missing: string[] = [];
  if ((await probe.bwrap()) === undefined)
    missing.push("bubblewrap is not installed (install it: apt-get install bubblewrap)");
  if (!(await probe.overlay()))
    missing.push("overlayfs cannot be mounted by this process (run the host agent as root)");
  if (network === "netns" && !probe.netns())
    missing.push(
      "network namespaces need iproute2's ip and root (install iproute2 and run as root, or set HANGAR_SANDBOX_NETWORK=host)",
    );
  if (missing.length > 0)
    return { ok: false, reason: `the sandbox driver cannot run here: ${missing.join("; ")}` };
  return { ok: true, network };
}

/** The real host's probe for netns support. */
export function netnsSupported(): boolean {
  return process.getuid?.() === 0 && existsSync(IP);
}

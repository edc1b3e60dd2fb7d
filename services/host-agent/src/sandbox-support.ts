import { existsSync } from "node:fs";
import type { SandboxNetwork } from "./driver/mod.js";
import { IP } from "./driver/netns.js";
import type { SandboxCapability } from "./run-spec.js";

/** HANGAR_HOST_AGENT_DRIVER: how OCI images run. `dir:` images always run as plain processes. */
export type HostDriverMode = "process" | "sandbox" | "auto";

/** What sandboxing needs from the host, as probed (injectable for tests). */
export interface HostProbe {
  /** Whether crun can run machines here (crun, catatonit, the seccomp profile, root), and if not why. */
  runtime: () => Promise<{ ok: true } | { ok: false; reason: string }>;
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
        "the host agent runs with HANGAR_HOST_AGENT_DRIVER=process, which runs only dir:<absolute path> images; " +
        "set HANGAR_HOST_AGENT_DRIVER=auto or sandbox to run OCI images",
    };
  }
  const missing: string[] = [];
  const runtime = await probe.runtime();
  if (!runtime.ok) missing.push(runtime.reason);
  if (!(await probe.overlay()))
    missing.push("overlayfs cannot be mounted by this process (run the host agent as root)");
  if (network === "netns" && !probe.netns())
    missing.push(
      "network namespaces need iproute2's ip and root (install iproute2 and run as root, or set HANGAR_HOST_AGENT_SANDBOX_NETWORK=host)",
    );
  if (missing.length > 0)
    return { ok: false, reason: `the sandbox driver cannot run here: ${missing.join("; ")}` };
  return { ok: true, network };
}

/** The real host's probe for netns support. */
export function netnsSupported(): boolean {
  return process.getuid?.() === 0 && existsSync(IP);
}

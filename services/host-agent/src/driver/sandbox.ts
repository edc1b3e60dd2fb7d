import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import {
  CATATONIT,
  crunRunArgv,
  DEFAULT_CAPABILITIES,
  defaultSeccomp,
  type IdRange,
  type RuntimeBind,
  type RuntimeNetwork,
  resolveUser,
  runtimeSpec,
  writeBundle,
} from "@hangar/oci";
import { netnsName } from "./netns.js";
import type { MachineRunSpec } from "./types.js";

const RESOLV_CONF = "/etc/resolv.conf";

/**
 * The crun container id of a machine: its id, prefixed with a hash of the agent's state folder, since
 * machine ids are unique per agent only (tests run several agents on one host) and crun's are per host.
 */
export function containerIdOf(stateDir: string, machineId: string): string {
  return `h${createHash("sha256").update(resolve(stateDir)).digest("hex").slice(0, 10)}-${machineId}`;
}

/** What the sandbox of one run is made of. */
export interface SandboxLaunch {
  containerId: string;
  /** The machine's root filesystem, mounted (an image's) or assembled (a dir: machine's) by the rootfs part. */
  rootfs: string;
  range: IdRange;
  /** false only for the benchmark's baseline (see runtimeSpec). */
  hardened: boolean;
}

/**
 * Writes the run's bundle and returns the argv that runs it, for the wrapper to exec: crun in the
 * foreground, the image's command under catatonit, as the image's USER (or root, mapped to the
 * machine's range), in its WorkingDir, with `env` as its whole environment; in the machine's network
 * namespace when it has one, else on the host's network. A dir: machine runs as its range's root in
 * the folder it names.
 */
export async function sandboxCommand(
  spec: MachineRunSpec,
  launch: SandboxLaunch,
  env: Record<string, string>,
): Promise<string[]> {
  const sandbox = spec.sandbox;
  const user =
    !sandbox || sandbox.user === "" ? { uid: 0, gid: 0 } : await resolveUser(launch.rootfs, sandbox.user);
  const binds: RuntimeBind[] =
    sandbox && existsSync(RESOLV_CONF) ? [{ src: RESOLV_CONF, dest: RESOLV_CONF, readOnly: true }] : [];
  const network: RuntimeNetwork =
    sandbox?.network === "netns"
      ? { kind: "netns", path: `/run/netns/${netnsName(spec.machineId)}` }
      : { kind: "host" };
  // Docker's rule when the image sets no HOME: root's is /root, anyone else gets /.
  const full = { ...env, HOME: env.HOME ?? (user.uid === 0 ? "/root" : "/") };
  const runtime = runtimeSpec({
    rootfs: launch.rootfs,
    args: spec.cmd,
    env: full,
    cwd: spec.cwd,
    user,
    idRange: launch.hardened ? launch.range : null,
    hardened: launch.hardened,
    seccomp: await defaultSeccomp(DEFAULT_CAPABILITIES),
    network,
    hostname: spec.machineId,
    binds,
    init: CATATONIT,
  });
  const bundle = await writeBundle(launch.containerId, runtime);
  return crunRunArgv(launch.containerId, bundle);
}

import { existsSync } from "node:fs";
import { resolveUser, sandboxArgv } from "@hangar/oci";
import { netnsExecArgv } from "./netns.js";
import { prepareRootfs } from "./rootfs.js";
import type { MachineRunSpec, SandboxSpec } from "./types.js";

const RESOLV_CONF = "/etc/resolv.conf";

/**
 * The argv that runs a sandboxed machine, for the wrapper to exec: bubblewrap on the machine's
 * root filesystem (mounted here if it is not yet), as the image's USER, in the image's WorkingDir,
 * with `env` as its whole environment; inside the machine's network namespace when it has one.
 */
export async function sandboxCommand(
  machineDir: string,
  spec: MachineRunSpec,
  sandbox: SandboxSpec,
  env: Record<string, string>,
): Promise<string[]> {
  // The machine version is part of the key: Fly gives an updated machine a fresh root filesystem.
  const rootfs = await prepareRootfs(machineDir, `${spec.instanceId} ${sandbox.image}`, sandbox.lowers);
  // No USER (or root): real root, no user namespace. bwrap can switch to another uid only inside a
  // user namespace of its own, which maps just that uid.
  const user = sandbox.user === "" ? { uid: 0, gid: 0 } : await resolveUser(rootfs, sandbox.user);
  const asRoot = user.uid === 0 && user.gid === 0;
  // Docker's rule when the image sets no HOME: root's is /root, anyone else gets /.
  const full = { ...env, HOME: env.HOME ?? (user.uid === 0 ? "/root" : "/") };
  const argv = sandboxArgv({
    rootfs,
    argv: spec.cmd,
    cwd: spec.cwd,
    env: full,
    ...(asRoot ? {} : { uid: user.uid, gid: user.gid }),
    // The host's network, or the machine's own namespace that `ip netns exec` puts bwrap in.
    network: true,
    binds: existsSync(RESOLV_CONF) ? [{ src: RESOLV_CONF, dest: RESOLV_CONF, readOnly: true }] : [],
    // The machine must outlive the agent; the wrapper, bwrap's parent, lives as long as the machine.
    dieWithParent: false,
  });
  return sandbox.network === "netns" ? netnsExecArgv(spec.machineId, argv) : argv;
}

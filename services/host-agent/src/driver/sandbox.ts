import { createHash } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  CATATONIT,
  crunRunArgv,
  DEFAULT_CAPABILITIES,
  defaultSeccomp,
  type IdRange,
  type RuntimeBind,
  type RuntimeNetwork,
  runtimeSpec,
  writeBundle,
} from "@hangar/oci";
import { RESOLVER_ADDRESS } from "../network/host-network.js";
import { netnsName } from "./netns.js";
import type { MachineRunSpec } from "./types.js";

const RESOLV_CONF = "/etc/resolv.conf";
const HOSTS = "/etc/hosts";
const HOSTNAME = "/etc/hostname";

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
  /** The ids the machine's process runs as (RunSetup.user, resolved by the rootfs part). */
  user: { uid: number; gid: number };
  /** false only for the benchmark's baseline (see runtimeSpec). */
  hardened: boolean;
  /** The machine's state folder: its generated resolv.conf and hosts live there. */
  machineDir: string;
  /** Its 6PN address, "" when it has none. */
  privateIpv6: string;
  /** What the parts bind in (its volumes). */
  binds: readonly RuntimeBind[];
}

/**
 * Writes the resolv.conf and hosts of a machine on its org's network, as Fly's machines have them:
 * the host's resolver (fdaa::3) answers `.internal` names and forwards the rest, and `fly-local-6pn`
 * names the machine's 6PN address (what an app binds to be reachable only privately). Returns the
 * read-only binds that put them at /etc. Written synchronously, as the start's other small files are
 * (each a threadpool round trip otherwise, waited behind a busy event loop on the start's path).
 */
function sixpnNetworkFiles(machineDir: string, machineId: string, address: string): RuntimeBind[] {
  const folder = join(machineDir, "etc");
  mkdirSync(folder, { recursive: true, mode: 0o755 });
  const resolvConf = join(folder, "resolv.conf");
  const hosts = join(folder, "hosts");
  writeFileSync(resolvConf, `nameserver ${RESOLVER_ADDRESS}\n`, { mode: 0o644 });
  writeFileSync(
    hosts,
    [
      "127.0.0.1\tlocalhost",
      "::1\tlocalhost ip6-localhost ip6-loopback",
      `${address}\tfly-local-6pn`,
      `${address}\t${machineId}`,
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  return [
    { src: resolvConf, dest: RESOLV_CONF, readOnly: true },
    { src: hosts, dest: HOSTS, readOnly: true },
  ];
}

/**
 * Writes a machine's /etc/hostname (its id, as on Fly, where `cat /etc/hostname` names the machine)
 * and returns the read-only bind that puts it there.
 */
function hostnameFile(machineDir: string, machineId: string): RuntimeBind {
  const folder = join(machineDir, "etc");
  mkdirSync(folder, { recursive: true, mode: 0o755 });
  const file = join(folder, "hostname");
  writeFileSync(file, `${machineId}\n`, { mode: 0o644 });
  return { src: file, dest: HOSTNAME, readOnly: true };
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
  const { user } = launch;
  // On its org's network a machine asks the host's resolver; otherwise, the host's own.
  const networkBinds: RuntimeBind[] =
    sandbox?.network === "netns" && launch.privateIpv6 !== ""
      ? sixpnNetworkFiles(launch.machineDir, spec.machineId, launch.privateIpv6)
      : sandbox && existsSync(RESOLV_CONF)
        ? [{ src: RESOLV_CONF, dest: RESOLV_CONF, readOnly: true }]
        : [];
  // A dir: machine sees the host's folders, /etc included: its hostname file stays the host's.
  const binds = sandbox
    ? [...networkBinds, hostnameFile(launch.machineDir, spec.machineId), ...launch.binds]
    : [...networkBinds, ...launch.binds];
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

import type { OciSeccomp } from "./seccomp.js";

/**
 * The capabilities podman (and Docker) give a container by default: everything else is dropped.
 * Kept sorted as the kernel numbers them, so CapEff reads 0x00000000800405fb.
 */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_SETFCAP",
];

/** Paths podman hides (an empty file or folder over them) and makes read-only. */
const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
  "/sys/fs/selinux",
  "/sys/dev/block",
];
const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** Where the init (catatonit) is bound inside a machine, as podman binds it at /run/podman-init. */
export const INIT_PATH = "/run/hangar-init";

/** A user namespace mapping: container ids 0..size-1 are host ids hostId..hostId+size-1. */
export interface IdRange {
  hostId: number;
  size: number;
}

/** A host file or folder bound into the container. */
export interface RuntimeBind {
  src: string;
  dest: string;
  readOnly: boolean;
  /**
   * Seen through an idmapped mount into the container's user namespace: a file the container's uid
   * N writes is stored as N, not as the range's host id (a volume works in any org's range).
   */
  idmap?: boolean;
}

/** How the container is networked: the host's network, a named namespace it joins, or none. */
export type RuntimeNetwork = { kind: "host" } | { kind: "netns"; path: string } | { kind: "none" };

export interface RuntimeSpecOptions {
  /** The root filesystem on the host (mounted nosuid,nodev by the caller). */
  rootfs: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  /** The user namespace; null runs without one (ids are the host's: only for the plain baseline). */
  idRange: IdRange | null;
  /**
   * false drops the hardening (all capabilities, no seccomp, no no_new_privs, nothing masked): the
   * baseline `pnpm bench machines` compares the hardened start with. Machines and builds always use true.
   */
  hardened: boolean;
  /** The converted seccomp profile (see seccomp.ts); required when hardened. */
  seccomp?: OciSeccomp;
  network: RuntimeNetwork;
  hostname?: string;
  binds?: readonly RuntimeBind[];
  /** The host's catatonit: run as the container's pid 1, reaping zombies and passing signals on. */
  init?: string;
}

/** An OCI runtime spec (config.json), the fields Hangar sets. */
export type RuntimeSpec = Record<string, unknown>;

const ALL_CAPABILITIES_PLAIN = [
  ...DEFAULT_CAPABILITIES,
  "CAP_NET_RAW",
  "CAP_SYS_ADMIN",
  "CAP_SYS_PTRACE",
  "CAP_SYS_MODULE",
  "CAP_MKNOD",
  "CAP_NET_ADMIN",
  "CAP_AUDIT_WRITE",
];

/**
 * The runtime spec crun runs a machine or a build step from: pid, ipc, uts and mount namespaces; a
 * user namespace mapping the image's ids to `idRange`; podman's default capabilities (effective only
 * for root, as Docker does), its seccomp profile and masked paths, no_new_privs; /dev holds only the
 * standard devices. The environment is in the spec: callers keep it on a root-only tmpfs.
 */
export function runtimeSpec(o: RuntimeSpecOptions): RuntimeSpec {
  if (o.hardened && !o.seccomp) throw new Error("a hardened runtime spec needs the seccomp profile");
  const caps = o.hardened ? [...DEFAULT_CAPABILITIES] : ALL_CAPABILITIES_PLAIN;
  const asRoot = o.user.uid === 0;
  const namespaces: Array<{ type: string; path?: string }> = [
    { type: "pid" },
    { type: "ipc" },
    { type: "uts" },
    { type: "mount" },
  ];
  if (o.idRange) namespaces.push({ type: "user" });
  if (o.network.kind === "netns") namespaces.push({ type: "network", path: o.network.path });
  if (o.network.kind === "none") namespaces.push({ type: "network" });
  const binds = [...(o.binds ?? [])];
  if (o.init) binds.push({ src: o.init, dest: INIT_PATH, readOnly: true });
  const mounts: unknown[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    // A namespace the machine joins belongs to the host's user namespace: sysfs cannot be mounted
    // from inside another one, so the host's is bound read-only instead, as podman does.
    o.network.kind === "netns" && o.idRange
      ? {
          destination: "/sys",
          type: "bind",
          source: "/sys",
          options: ["rbind", "nosuid", "noexec", "nodev", "ro"],
        }
      : { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    ...binds.map((b) => ({
      destination: b.dest,
      type: "bind",
      source: b.src,
      options: [
        "rbind",
        "nosuid",
        "nodev",
        ...(b.readOnly ? ["ro"] : ["rw"]),
        // Only with a user namespace to map through (the plain baseline has none).
        ...(b.idmap && o.idRange ? ["idmap"] : []),
      ],
    })),
  ];
  const linux: Record<string, unknown> = { namespaces };
  if (o.idRange) {
    const map = [{ containerID: 0, hostID: o.idRange.hostId, size: o.idRange.size }];
    linux.uidMappings = map;
    linux.gidMappings = map;
  }
  if (o.hardened) {
    linux.maskedPaths = MASKED_PATHS;
    linux.readonlyPaths = READONLY_PATHS;
    linux.seccomp = o.seccomp;
  }
  const args = o.init ? [INIT_PATH, "--", ...o.args] : [...o.args];
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: o.user.uid, gid: o.user.gid, additionalGids: o.user.additionalGids ?? [o.user.gid] },
      args,
      env: Object.entries(o.env).map(([k, v]) => `${k}=${v}`),
      cwd: o.cwd,
      capabilities: {
        bounding: caps,
        effective: asRoot ? caps : [],
        permitted: asRoot ? caps : [],
        inheritable: [],
        ambient: [],
      },
      noNewPrivileges: o.hardened,
      // The wrapper runs at -1000 so the OOM killer picks the app; the app gets the default back.
      oomScoreAdj: 0,
    },
    root: { path: o.rootfs, readonly: false },
    ...(o.hostname ? { hostname: o.hostname } : {}),
    mounts,
    linux,
  };
}

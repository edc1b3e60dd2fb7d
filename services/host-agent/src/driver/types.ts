/** What the host agent asks a driver to run: one run of one machine. */
export interface MachineRunSpec {
  machineId: string;
  app: string;
  region: string;
  /** The app's organization (slug): machines of one org share a host id range, other orgs never. */
  org?: string;
  imageRef: string;
  instanceId: string;
  /** The resolved argv, e.g. ["node", "server.js"]. */
  cmd: string[];
  cwd: string;
  /** Fly's environment plus the config's env, passed to the process as is. */
  env: Record<string, string>;
  /**
   * The app's secrets, decrypted just in time: they go into the machine's environment (over `env`)
   * and nowhere else; run.json records the spec without them, so an adopting agent never needs them.
   */
  secretEnv?: Readonly<Record<string, string>>;
  /** Allocated (and kept across runs of the machine) when not given. */
  privateIp?: string;
  /** Allocated when not given. */
  port?: number;
  /**
   * Set for OCI images: `cmd` runs under bubblewrap on an overlay of the image's layers, `cwd` is a
   * folder inside that root filesystem and `env` is all the sandbox sees.
   */
  sandbox?: SandboxSpec;
  /** The machine's size, which its cgroups enforce (Fly's default, shared-cpu-1x, when absent). */
  guest?: GuestSize;
  /** Its address on its org's private network (6PN); set for sandboxed machines with network "netns". */
  sixpn?: { org: string; prefix: string; address: string };
  /** The volumes it mounts (on this host's disks), each at an absolute path inside the machine. */
  volumes?: VolumeMount[];
  /**
   * Files written into its root filesystem before every run (its config's `files`, decoded; a secret's
   * decrypted just in time): like secretEnv, never in run.json.
   */
  files?: readonly MachineFile[];
}

/** A file written into a machine's root filesystem at boot. */
export interface MachineFile {
  /** Absolute, without empty, . or .. segments (the gateway checked it; the driver checks again). */
  guestPath: string;
  content: Uint8Array;
  /** Permission bits. */
  mode: number;
}

/** A volume a machine mounts (as its config's `mounts` name it): its id and where it appears in the machine. */
export interface VolumeMount {
  volume: string;
  path: string;
}

/** A machine's CPUs and memory, from its config's `guest`. */
export interface GuestSize {
  cpus: number;
  cpuKind: "shared" | "performance";
  memoryMb: number;
  /** Swap the machine may use besides its memory (the config's init.swap_size_mb: fly.toml swap_size_mb); 0 or absent: none. */
  swapMb?: number;
}

/** How a sandboxed machine is networked: the host's network, or a namespace of its own. */
export type SandboxNetwork = "host" | "netns";

/** The root filesystem and user a sandboxed machine runs with. */
export interface SandboxSpec {
  /** `repository@digest`: a new image (or a new machine version) gets a fresh writable layer. */
  image: string;
  /** Unpacked layer folders on the host, top layer first. */
  lowers: string[];
  /** The image's USER ("" is root): a name or uid, optionally with ":group". */
  user: string;
  network: SandboxNetwork;
}

/** A machine's process as the driver runs it. */
export interface RunningMachine {
  machineId: string;
  /** The pid of the process group leader (the wrapper that records the exit). */
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells this process from a later one that reuses its pid. */
  startTime: number;
  privateIp: string;
  /** Its 6PN address, "" when it has none. */
  privateIpv6: string;
  port: number;
}

/** How a machine's process ended. */
export interface ExitInfo {
  /** The exit status, 128+n after a death by signal n (as a shell reports it); null when unknown. */
  exitCode: number | null;
  /** The signal that killed the process, e.g. "SIGTERM". */
  signal?: string;
  /** Set by the driver: whether its stop or destroy asked for this exit (this agent's or an earlier one's). */
  requested?: boolean;
  /** The OOM killer ended the run: it killed a process of the machine, and the run ended by SIGKILL. */
  oomKilled?: boolean;
}

export type LogStream = "stdout" | "stderr";

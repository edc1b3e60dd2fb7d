import { randomBytes } from "node:crypto";
import { lstat, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import {
  CATATONIT,
  DEFAULT_CAPABILITIES,
  defaultSeccomp,
  deleteContainer,
  type IdRange,
  type OciSeccomp,
  type RuntimeBind,
  type RuntimeSpec,
  runContainer,
  runtimeSpec,
  untilCreated,
} from "@hangar/oci";
import { type CommandOutcome, OutputCollector, type OutputLine } from "./command.js";
import type { BuildNetwork } from "./network/build-network.js";

/*
 * A RUN step runs in the sandbox machines get (crun from a hardened runtime spec: a user namespace,
 * podman's capabilities and seccomp profile, no_new_privs, pid namespace with catatonit), over the
 * step's root: an overlay whose layers are idmapped into the build's id range.
 */

/**
 * The host ids builds run as: one range for every build of the host, just below the ranges host
 * agents hand their tenants (from 2^30 up, services/host-agent/src/driver/id-ranges.ts), so a build
 * is never any org's machines. A build sees no other (each has its own mount and pid namespaces).
 */
export const BUILD_ID_RANGE: IdRange = { hostId: 2 ** 30 - 65536, size: 65536 };

/** What one RUN step runs, and where. */
export interface SandboxedRun {
  /** The step's root filesystem, mounted by mountIdmappedOverlay with `range`. */
  rootfs: string;
  argv: string[];
  /** `NAME=value` entries: the whole environment. */
  env: string[];
  cwd: string;
  user: { uid: number; gid: number };
  range: IdRange;
  /** "default": the build's network namespace (`buildNetwork`); "none": a namespace with only loopback. */
  network: "default" | "none";
  /** The build's network, which a step with network "default" joins. */
  buildNetwork?: Pick<BuildNetwork, "netnsPath" | "resolvConf" | "caFile">;
  /** The step's --mount binds and #! heredoc script (step-mounts.ts). */
  binds?: RuntimeBind[];
}

let seccomp: Promise<OciSeccomp> | undefined;

/** Where a RUN step with network finds the platform's CA bundle (HANGAR_BUILDER_CA_FILE), outside the image's own paths. */
export const BUILD_CA_PATH = "/run/hangar/ca-certificates.crt";

/**
 * The variables through which the usual clients (Node and npm, OpenSSL, curl, pip, git) trust the
 * platform's CA bundle; the step's own environment (the image's ENV) wins over them. They live only
 * in the step's process: never in the image config or a layer.
 */
function caEnv(): Record<string, string> {
  return Object.fromEntries(
    [
      "NODE_EXTRA_CA_CERTS",
      "SSL_CERT_FILE",
      "CURL_CA_BUNDLE",
      "REQUESTS_CA_BUNDLE",
      "PIP_CERT",
      "GIT_SSL_CAINFO",
    ].map((name) => [name, BUILD_CA_PATH]),
  );
}

/** A RUN step's hostname, which its /etc/hosts names too. */
const BUILD_HOSTNAME = "hangar-build";

/** The /etc/hosts every RUN step gets, as BuildKit gives one: localhost and the step's hostname. */
const BUILD_HOSTS = `127.0.0.1\tlocalhost ${BUILD_HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n`;

/**
 * The host's file of BUILD_HOSTS, written when missing or changed (a temp folder's cleaner may have
 * removed it from a long-running builder); written whole and renamed, so concurrent builds never
 * bind a half-written one.
 */
async function buildHostsFile(): Promise<string> {
  const path = join(tmpdir(), "hangar-build-hosts");
  if ((await readFile(path, "utf8").catch(() => "")) === BUILD_HOSTS) return path;
  const partial = `${path}.${randomBytes(6).toString("hex")}`;
  await writeFile(partial, BUILD_HOSTS, { mode: 0o644 });
  await rename(partial, path);
  return path;
}

/** The runtime spec of a RUN step. */
export async function runStepSpec(r: SandboxedRun): Promise<RuntimeSpec> {
  seccomp ??= defaultSeccomp(DEFAULT_CAPABILITIES);
  if (r.network === "default" && !r.buildNetwork)
    throw new Error("a RUN step with network needs the build's network");
  const net = r.network === "default" ? r.buildNetwork : undefined;
  return runtimeSpec({
    rootfs: r.rootfs,
    args: r.argv,
    env: {
      ...(net?.caFile ? caEnv() : {}),
      ...Object.fromEntries(r.env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
    },
    cwd: r.cwd,
    user: r.user,
    idRange: r.range,
    hardened: true,
    seccomp: await seccomp,
    network: net ? { kind: "netns", path: net.netnsPath } : { kind: "none" },
    hostname: BUILD_HOSTNAME,
    binds: [
      // As BuildKit's: a step resolves localhost whatever the image holds, and a package's postinst
      // that writes /etc/hosts when it is missing (netbase) leaves none in the layer.
      { src: await buildHostsFile(), dest: "/etc/hosts", readOnly: true },
      ...(net ? [{ src: net.resolvConf, dest: "/etc/resolv.conf", readOnly: true }] : []),
      ...(net?.caFile ? [{ src: net.caFile, dest: BUILD_CA_PATH, readOnly: true }] : []),
      ...(r.binds ?? []),
    ],
    init: CATATONIT,
  });
}

/**
 * Runs a RUN step's spec to its end, handing each output line to `onLine` as it comes. An abort
 * signal kills the container and rejects with the signal's reason.
 */
export async function runInSandbox(
  spec: RuntimeSpec,
  opts: { onLine?: (l: OutputLine) => void; signal?: AbortSignal; cgroupProcs?: readonly string[] } = {},
): Promise<CommandOutcome> {
  opts.signal?.throwIfAborted();
  const id = `hangar-build-${randomBytes(8).toString("hex")}`;
  const output = new OutputCollector(opts.onLine);
  // crun delete --force kills the container's processes, once it has created them; crun run then returns.
  // A kill that fails (crun never created it, a spawn refused) leaves the step to its own end.
  const kill = () =>
    void untilCreated(id, 10_000)
      .then(() => deleteContainer(id))
      .catch(() => undefined);
  opts.signal?.addEventListener("abort", kill, { once: true });
  try {
    const { exitCode } = await runContainer(id, spec, {
      ...(opts.cgroupProcs ? { cgroupProcs: opts.cgroupProcs } : {}),
      onStdout: (b) => output.push("stdout", b),
      onStderr: (b) => output.push("stderr", b),
    });
    opts.signal?.throwIfAborted();
    return { exitCode, signal: null, output: output.finish() };
  } finally {
    opts.signal?.removeEventListener("abort", kill);
  }
}

/**
 * The paths of `rootfs` crun may create as mount points for `spec`: each mount's destination and the
 * folders leading to it, deepest first, relative to the root without a leading slash.
 */
export function mountPoints(spec: RuntimeSpec): string[] {
  const paths = new Set<string>();
  for (const m of spec.mounts as Array<{ destination: string }>) {
    let p = posix.normalize(m.destination).replace(/^\/+/, "");
    while (p !== "" && p !== ".") {
      paths.add(p);
      p = posix.dirname(p);
    }
  }
  return [...paths].sort((a, b) => b.split("/").length - a.split("/").length);
}

/**
 * Of the mount points that did not exist before the run (`existed` false), those crun left behind
 * untouched: an empty file or folder, or a folder holding only other such points. They stay out of
 * the step's layer.
 */
export async function leftMountPoints(rootfs: string, existed: Map<string, boolean>): Promise<Set<string>> {
  const left = new Set<string>();
  // Deepest first (mountPoints' order), so a folder's own points are known before the folder.
  for (const [p, was] of existed) {
    if (was) continue;
    const st = await lstat(join(rootfs, p)).catch(() => undefined);
    if (st === undefined) continue;
    const empty = st.isDirectory()
      ? (await readdir(join(rootfs, p))).every((name) => left.has(`${p}/${name}`))
      : st.isFile() && st.size === 0;
    if (empty) left.add(p);
  }
  return left;
}

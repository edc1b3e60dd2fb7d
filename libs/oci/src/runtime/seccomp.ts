import { readFile } from "node:fs/promises";
import { arch, release } from "node:os";
import { SystemToolError } from "../errors.js";

/**
 * The default seccomp profile of podman and Docker, as Debian ships it (package
 * golang-github-containers-common), turned into the `linux.seccomp` of an OCI runtime spec the way
 * podman does (containers/common pkg/seccomp): the rules for this architecture and the process's
 * capabilities are kept, the rest dropped.
 */
export const CONTAINERS_SECCOMP_PROFILE = "/usr/share/containers/seccomp.json";

/** The Docker-format profile (only the fields the conversion reads). */
interface DockerProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: Array<{ architecture: string; subArchitectures?: string[] | null }>;
  syscalls: DockerRule[];
}

interface DockerArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

interface DockerFilter {
  caps?: string[] | null;
  arches?: string[] | null;
  minKernel?: string | null;
}

interface DockerRule {
  names?: string[] | null;
  name?: string;
  action: string;
  errnoRet?: number;
  args?: DockerArg[] | null;
  includes?: DockerFilter | null;
  excludes?: DockerFilter | null;
}

/** `linux.seccomp` of an OCI runtime spec. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: Array<{
    names: string[];
    action: string;
    errnoRet?: number;
    args?: Array<{ index: number; value: number; valueTwo?: number; op: string }>;
  }>;
}

/** Node's arch names to the profile's (Go's) and libseccomp's. */
const ARCHES: Record<string, { go: string; scmp: string }> = {
  x64: { go: "amd64", scmp: "SCMP_ARCH_X86_64" },
  arm64: { go: "arm64", scmp: "SCMP_ARCH_AARCH64" },
  ppc64: { go: "ppc64le", scmp: "SCMP_ARCH_PPC64LE" },
  s390x: { go: "s390x", scmp: "SCMP_ARCH_S390X" },
  riscv64: { go: "riscv64", scmp: "SCMP_ARCH_RISCV64" },
};

/** "6.18.44-fc" -> [6, 18]. */
function kernelVersion(text: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function kernelAtLeast(have: [number, number], want: string): boolean {
  const [major, minor] = kernelVersion(want);
  return have[0] > major || (have[0] === major && have[1] >= minor);
}

/**
 * Converts a Docker-format profile for a process with `capabilities` (names such as "CAP_CHOWN") on
 * `nodeArch` and kernel `kernel`: what podman hands crun for the same container.
 */
export function convertProfile(
  profile: DockerProfile,
  capabilities: readonly string[],
  nodeArch: string = arch(),
  kernel: string = release(),
): OciSeccomp {
  const target = ARCHES[nodeArch];
  if (!target) throw new SystemToolError(`no seccomp architecture is known for ${nodeArch}`);
  const caps = new Set(capabilities);
  const have = kernelVersion(kernel);
  const mapped = profile.archMap?.find((a) => a.architecture === target.scmp);
  const architectures = mapped ? [mapped.architecture, ...(mapped.subArchitectures ?? [])] : [target.scmp];
  const syscalls: OciSeccomp["syscalls"] = [];
  for (const rule of profile.syscalls) {
    const inc = rule.includes ?? {};
    const exc = rule.excludes ?? {};
    if (inc.arches?.length && !inc.arches.includes(target.go)) continue;
    if (exc.arches?.includes(target.go)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) continue;
    if (exc.caps?.some((c) => caps.has(c))) continue;
    if (inc.minKernel && !kernelAtLeast(have, inc.minKernel)) continue;
    const names = rule.names ?? (rule.name ? [rule.name] : []);
    if (names.length === 0) continue;
    syscalls.push({
      names,
      action: rule.action,
      ...(rule.errnoRet !== undefined ? { errnoRet: rule.errnoRet } : {}),
      ...(rule.args?.length
        ? {
            args: rule.args.map((a) => ({
              index: a.index,
              value: a.value,
              ...(a.valueTwo ? { valueTwo: a.valueTwo } : {}),
              op: a.op,
            })),
          }
        : {}),
    });
  }
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures,
    syscalls,
  };
}

let cached: Promise<DockerProfile> | undefined;

/** The host's containers-common profile, read once; a clear error names the package when it is missing. */
export function loadContainersProfile(path: string = CONTAINERS_SECCOMP_PROFILE): Promise<DockerProfile> {
  if (path !== CONTAINERS_SECCOMP_PROFILE) return readProfile(path);
  cached ??= readProfile(path).catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

async function readProfile(path: string): Promise<DockerProfile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new SystemToolError(
      `the seccomp profile ${path} is missing (install it: apt-get install golang-github-containers-common)`,
      { cause: err },
    );
  }
  return JSON.parse(text) as DockerProfile;
}

const converted = new Map<string, Promise<OciSeccomp>>();

/** The host's default profile converted for `capabilities` (podman's default set, for every machine); cached. */
export function defaultSeccomp(capabilities: readonly string[]): Promise<OciSeccomp> {
  const key = [...capabilities].sort().join(",");
  let found = converted.get(key);
  if (!found) {
    found = loadContainersProfile().then((p) => denyNestedUserNamespaces(convertProfile(p, capabilities)));
    found.catch(() => converted.delete(key));
    converted.set(key, found);
  }
  return found;
}

const CLONE_NEWUSER = 0x10000000;
const EPERM = 1;

/**
 * Podman's profile lets unshare(2) through unconditionally (its clone rule already masks the
 * namespace flags): a nested user namespace would give the machine's root every capability over
 * namespaces of its own, mount among them, and more of the kernel to attack. Docker's profile refuses
 * unshare without CAP_SYS_ADMIN; this keeps podman's rule for every other flag and refuses
 * CLONE_NEWUSER with EPERM.
 */
export function denyNestedUserNamespaces(profile: OciSeccomp): OciSeccomp {
  const syscalls = profile.syscalls.flatMap((rule) => {
    if (!rule.names.includes("unshare") || rule.args || rule.action !== "SCMP_ACT_ALLOW") return [rule];
    const rest = rule.names.filter((n) => n !== "unshare");
    return rest.length > 0 ? [{ ...rule, names: rest }] : [];
  });
  syscalls.push(
    {
      names: ["unshare"],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: 0, value: CLONE_NEWUSER, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }],
    },
    {
      names: ["unshare"],
      action: "SCMP_ACT_ERRNO",
      errnoRet: EPERM,
      args: [{ index: 0, value: CLONE_NEWUSER, valueTwo: CLONE_NEWUSER, op: "SCMP_CMP_MASKED_EQ" }],
    },
  );
  return { ...profile, syscalls };
}

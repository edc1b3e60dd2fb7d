import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

/*
 * The sandbox probe (sandbox-probe.c): what a tenant's root tries inside a machine or a build step.
 * Built static with the host's C compiler, once per process, so it runs in any image.
 */

const exec = promisify(execFile);
const SOURCE = new URL("./sandbox-probe.c", import.meta.url).pathname;
let built: Promise<string> | undefined;

/** The path of the static probe binary, compiled on first use (needs gcc and libc6-dev). */
export function sandboxProbe(): Promise<string> {
  built ??= (async () => {
    const dir = join(tmpdir(), `hangar-sandbox-probe-${process.pid}`);
    await mkdir(dir, { recursive: true });
    const out = join(dir, "sandbox-probe");
    try {
      await exec("cc", ["-static", "-O2", "-o", out, SOURCE]);
    } catch (err) {
      throw new Error(
        `could not build the sandbox probe (install a C compiler and static libc: apt-get install gcc libc6-dev): ${(err as Error).message}`,
      );
    }
    return out;
  })();
  return built;
}

/** What the probe prints. */
export interface SandboxProbe {
  mknod: string;
  mount: string;
  init_module: string;
  unshare_user: string;
  CapEff: string;
  Seccomp: string;
  processes: string;
  pid1: string;
}

/** Podman's default capability set, as /proc/self/status shows it. */
export const PODMAN_CAP_EFF = "00000000800405fb";

/** What the probe must print inside a hardened sandbox, as the image's root (pid1 and processes vary). */
export const HARDENED_PROBE: Omit<SandboxProbe, "processes" | "pid1"> = {
  mknod: "EPERM",
  mount: "EPERM",
  init_module: "EPERM",
  unshare_user: "EPERM",
  CapEff: PODMAN_CAP_EFF,
  Seccomp: "2",
};

/** Parses the probe's line from an output that may hold others. */
export function parseSandboxProbe(output: string): SandboxProbe {
  const line = output
    .split("\n")
    .reverse()
    .find((l) => l.startsWith('{"mknod"'));
  if (!line) throw new Error(`no sandbox probe line in: ${output}`);
  return JSON.parse(line) as SandboxProbe;
}

import { existsSync } from "node:fs";
import { lstat, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { resolveUser, sandboxArgv } from "@hangar/oci";
import { SandboxToolMissingError } from "./errors.js";
import { netnsExecArgv } from "./netns.js";
import type { MachineRunSpec, SandboxSpec } from "./types.js";

const RESOLV_CONF = "/etc/resolv.conf";

/** util-linux's setpriv, looked up once (root's PATH has it, a service's may not). */
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv", "/sbin/setpriv"].find((path) =>
  existsSync(path),
);

/**
 * The argv that runs a sandboxed machine, for the wrapper to exec: bubblewrap on the machine's
 * root filesystem (mounted at `rootfs` by its part), as the image's USER, in the image's WorkingDir,
 * with `env` as its whole environment; inside the machine's network namespace when it has one.
 */
export async function sandboxCommand(
  rootfs: string,
  spec: MachineRunSpec,
  sandbox: SandboxSpec,
  env: Record<string, string>,
): Promise<string[]> {
  const user = sandbox.user === "" ? { uid: 0, gid: 0 } : await resolveUser(rootfs, sandbox.user);
  const asRoot = user.uid === 0 && user.gid === 0;
  const binds = existsSync(RESOLV_CONF) ? [{ src: RESOLV_CONF, dest: RESOLV_CONF, readOnly: true }] : [];
  await ensureMountPoints(
    rootfs,
    binds.map((b) => b.dest),
  );
  // Docker's rule when the image sets no HOME: root's is /root, anyone else gets /.
  const full = { ...env, HOME: env.HOME ?? (user.uid === 0 ? "/root" : "/") };
  let argv = sandboxArgv({
    rootfs,
    argv: spec.cmd,
    cwd: spec.cwd,
    env: full,
    ...(asRoot ? {} : { uid: user.uid, gid: user.gid }),
    // The host's network, or the machine's own namespace that `ip netns exec` puts bwrap in.
    network: true,
    binds,
    // The machine must outlive the agent; the wrapper, bwrap's parent, lives as long as the machine.
    dieWithParent: false,
  });
  if (!asRoot) {
    // Root (no USER) runs bwrap as real root, with no user namespace. Anyone else starts bwrap as
    // that user: its unprivileged user namespace then maps the uid to itself, so the user owns its
    // own files (COPY --chown, its home) and not root's (/etc). bwrap started by root would map the
    // uid to root instead. setpriv execs (no fork), so bwrap's monitor stays the wrapper's child.
    if (SETPRIV === undefined) {
      throw new SandboxToolMissingError(
        "setpriv",
        `the image runs as USER ${sandbox.user} (uid ${user.uid}) and the host needs util-linux's setpriv ` +
          "to start bubblewrap as that user; install it (apt-get install util-linux)",
      );
    }
    argv = [SETPRIV, `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--", ...argv];
  }
  // `ip netns exec` needs root: it comes first, and execs what follows (no fork either).
  return sandbox.network === "netns" ? netnsExecArgv(spec.machineId, argv) : argv;
}

/**
 * Creates, as root, the mount points bwrap needs that the image lacks (/proc, /dev, bind targets such
 * as /etc/resolv.conf): bwrap creates missing ones itself, but started as the image's USER it may not
 * write to root's folders. Only missing entries of real folders are created; symlinks are left to bwrap.
 */
async function ensureMountPoints(rootfs: string, files: readonly string[]): Promise<void> {
  for (const dir of ["proc", "dev"]) await ensureEntry(join(rootfs, dir), "dir");
  for (const file of files) {
    const parts = file.split("/").filter((p) => p !== "");
    let at = rootfs;
    let ok = true;
    for (const part of parts.slice(0, -1)) {
      at = join(at, part);
      if (!(await ensureEntry(at, "dir"))) {
        ok = false;
        break;
      }
    }
    if (ok && parts.length > 0) await ensureEntry(join(at, parts.at(-1) as string), "file");
  }
}

/** Creates `path` when nothing is there; whether it is (now) a real folder, or for a file, anything. */
async function ensureEntry(path: string, kind: "dir" | "file"): Promise<boolean> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (st !== undefined) return kind === "file" || st.isDirectory();
  // O_EXCL (wx) and mkdir never follow a symlink that appeared meanwhile.
  if (kind === "dir") await mkdir(path, { mode: 0o755 });
  else await writeFile(path, "", { flag: "wx", mode: 0o644 });
  return true;
}

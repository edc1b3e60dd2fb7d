import { constants } from "node:fs";
import { access, type FileHandle, open, realpath } from "node:fs/promises";
import { basename, delimiter, dirname, join } from "node:path";
import { UnknownUserError } from "./errors.js";

/** What to run in a sandbox, and how. */
export interface SandboxOptions {
  /** The root filesystem, bound read-write as `/`. */
  rootfs: string;
  argv: string[];
  /** Working directory inside the sandbox; defaults to `/`. */
  cwd?: string;
  /** The whole environment: the sandbox starts with none. */
  env?: Record<string, string>;
  /**
   * Runs the command as this uid (and `gid`, default the uid) in a user namespace of bwrap's own,
   * which maps only that id to the uid bwrap itself runs as. The caller must start bwrap as that
   * same user (spawn's uid/gid, setpriv): started by root it maps the uid to root, so the user's own
   * files show as nobody's and root's as its own. Leave both out to run as the caller, with no user
   * namespace.
   */
  uid?: number;
  gid?: number;
  /** Shares the host's network; without it the sandbox has only a loopback of its own. */
  network?: boolean;
  /** Mounts a fresh tmpfs on /tmp. */
  tmpfs?: boolean;
  /** Kills the sandbox when the process that started bwrap dies. */
  dieWithParent?: boolean;
  /** Extra bind mounts, e.g. /etc/resolv.conf read-only when `network` is on. */
  binds?: Array<{ src: string; dest: string; readOnly?: boolean }>;
}

/**
 * The bubblewrap argv (starting with "bwrap") that runs `argv` with `rootfs` as `/`. With `uid`/`gid`,
 * start it as that user (see SandboxOptions.uid).
 */
export function sandboxArgv(o: SandboxOptions): string[] {
  const args = ["bwrap", "--bind", o.rootfs, "/", "--proc", "/proc", "--dev", "/dev"];
  if (o.tmpfs) args.push("--tmpfs", "/tmp");
  args.push("--unshare-pid", "--unshare-ipc", "--unshare-uts");
  if (!o.network) args.push("--unshare-net");
  if (o.dieWithParent) args.push("--die-with-parent");
  if (o.uid !== undefined || o.gid !== undefined) {
    // bwrap only switches ids inside a user namespace of its own; started as the user, that maps uid to uid.
    args.push("--unshare-user", "--uid", String(o.uid ?? 0), "--gid", String(o.gid ?? o.uid ?? 0));
  }
  for (const b of o.binds ?? []) args.push(b.readOnly ? "--ro-bind" : "--bind", b.src, b.dest);
  args.push("--chdir", o.cwd ?? "/", "--clearenv");
  for (const [k, v] of Object.entries(o.env ?? {})) args.push("--setenv", k, v);
  args.push("--", ...o.argv);
  return args;
}

/** The path of the bwrap binary on PATH, or undefined when bubblewrap is not installed. */
export async function bwrapPath(): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    const candidate = join(dir, "bwrap");
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

/**
 * Resolves a Dockerfile USER spec ("node", "1000", "1000:1000", "app:app") against the image's
 * /etc/passwd and /etc/group. A numeric uid need not exist (its gid is then 0, as Docker does);
 * a name must.
 */
export async function resolveUser(rootfs: string, user: string): Promise<{ uid: number; gid: number }> {
  const [userPart = "", groupPart] = user.split(":", 2);
  if (userPart === "") throw new UnknownUserError(`USER "${user}" names no user`);
  const passwd = parseColonFile(await readImageFile(rootfs, "etc/passwd"));
  const entry = /^\d+$/.test(userPart)
    ? passwd.find((f) => f[2] === userPart)
    : passwd.find((f) => f[0] === userPart);
  if (entry === undefined && !/^\d+$/.test(userPart)) {
    throw new UnknownUserError(
      `user "${userPart}" is not in the image's /etc/passwd; add it (useradd) or use a numeric uid`,
    );
  }
  const uid = Number(entry?.[2] ?? userPart);
  let gid = Number(entry?.[3] ?? 0);
  if (groupPart !== undefined && groupPart !== "") {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const group = parseColonFile(await readImageFile(rootfs, "etc/group")).find((f) => f[0] === groupPart);
      if (group === undefined) {
        throw new UnknownUserError(
          `group "${groupPart}" is not in the image's /etc/group; add it or use a numeric gid`,
        );
      }
      gid = Number(group[2]);
    }
  }
  return { uid, gid };
}

/** The most of /etc/passwd or /etc/group read: a machine's own root filesystem is the tenant's to fill. */
const MAX_IMAGE_FILE_BYTES = 1024 * 1024;

/**
 * The image's own file, read by host root from a root filesystem the machine may have changed while
 * it ran: its folder must resolve inside the root (a symlinked /etc could point at the host's), the
 * file itself is opened without following a symlink and without blocking (a FIFO), and only a
 * regular file of at most 1 MiB is read (not /dev/zero). Anything else reads as empty.
 */
async function readImageFile(rootfs: string, rel: string): Promise<string> {
  const root = await realpath(rootfs);
  const dir = await realpath(join(root, dirname(rel))).catch(() => undefined);
  if (dir === undefined || (dir !== root && !dir.startsWith(`${root}/`))) return "";
  let file: FileHandle;
  try {
    file = await open(
      join(dir, basename(rel)),
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
  } catch {
    return "";
  }
  try {
    const st = await file.stat();
    if (!st.isFile() || st.size > MAX_IMAGE_FILE_BYTES) return "";
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await file.read(buf, 0, st.size, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await file.close();
  }
}

function parseColonFile(text: string): string[][] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => line.split(":"));
}

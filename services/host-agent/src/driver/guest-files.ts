import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chown, lstat, mkdir, open, readlink, rename, rm } from "node:fs/promises";
import { join } from "node:path";

/** At most this many symlinks are followed resolving one path, as Linux's MAXSYMLINKS. */
const MAX_LINKS = 40;

/** A file that cannot be written where its guest path says, inside the machine's root filesystem. */
export class GuestFileError extends Error {
  override readonly name = "GuestFileError";
}

/** Host ids a written file and the folders made for it get (the machine's ids, shifted into its range). */
export interface GuestFileOwners {
  file: { uid: number; gid: number };
  folder: { uid: number; gid: number };
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === "ENOENT";
}

/**
 * The host path of the folder `parents` (guest path segments) names inside `root`, resolved as the
 * machine itself would resolve it (chroot-like: a symlink's absolute target starts again at `root`,
 * `..` never climbs above it), creating the folders that are missing, owned by `owners.folder`.
 * A folder that is a mount point (a dir: machine's host folders) is refused: it is not the machine's.
 * Sound only while nothing of the machine runs (it is called before the process starts): the walk
 * checks each step with lstat, and nothing else changes the tree meanwhile.
 */
async function folderInRoot(
  root: string,
  parents: string[],
  owners: GuestFileOwners,
  mountPoints: ReadonlySet<string>,
  guestPath: string,
): Promise<string> {
  const queue = [...parents];
  const at: string[] = [];
  let links = 0;
  while (queue.length > 0) {
    const segment = queue.shift() as string;
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      at.pop();
      continue;
    }
    const host = join(root, ...at, segment);
    if (mountPoints.has(host))
      throw new GuestFileError(
        `file ${guestPath}: /${[...at, segment].join("/")} is a folder of the host, not of the machine`,
      );
    const st = await lstat(host).catch((err: unknown) => {
      if (isMissing(err)) return null;
      throw err;
    });
    if (st === null) {
      await mkdir(host, { mode: 0o755 });
      await chown(host, owners.folder.uid, owners.folder.gid);
    } else if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS)
        throw new GuestFileError(`file ${guestPath}: too many levels of symbolic links`);
      const target = await readlink(host);
      if (target.startsWith("/")) at.length = 0;
      queue.unshift(...target.split("/"));
      continue;
    } else if (!st.isDirectory()) {
      throw new GuestFileError(`file ${guestPath}: /${[...at, segment].join("/")} is not a folder`);
    }
    at.push(segment);
  }
  return join(root, ...at);
}

/**
 * Writes `content` at `guestPath` inside the root filesystem mounted at `root`, with `mode` and owned by
 * `owners.file`, never outside `root`: parent symlinks resolve inside it (folderInRoot), and the file
 * itself is written under a fresh name (O_EXCL, O_NOFOLLOW) and renamed over the last segment, so a
 * symlink there is replaced, never followed. `guestPath` was checked (absolute, no empty, . or ..
 * segments) by guestPathProblem.
 */
export async function writeGuestFile(
  root: string,
  guestPath: string,
  content: Uint8Array,
  mode: number,
  owners: GuestFileOwners,
  mountPoints: ReadonlySet<string> = new Set(),
): Promise<void> {
  const segments = guestPath.split("/").filter((s) => s !== "");
  const name = segments.pop();
  if (name === undefined || name === "." || name === "..")
    throw new GuestFileError(`file ${guestPath}: not a path to a file`);
  const folder = await folderInRoot(root, segments, owners, mountPoints, guestPath);
  const final = join(folder, name);
  if (mountPoints.has(final))
    throw new GuestFileError(`file ${guestPath}: it is a file of the host, not of the machine`);
  const existing = await lstat(final).catch((err: unknown) => {
    if (isMissing(err)) return null;
    throw err;
  });
  if (existing?.isDirectory()) throw new GuestFileError(`file ${guestPath}: a folder is there`);
  const temp = join(folder, `.hangar-file-${randomBytes(6).toString("hex")}`);
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const handle = await open(temp, flags, 0o600);
  try {
    await handle.writeFile(content);
    await handle.chown(owners.file.uid, owners.file.gid);
    // After chown, which clears set-id bits; chmod is not subject to the umask.
    await handle.chmod(mode);
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(temp, final).catch(async (err: unknown) => {
    await rm(temp, { force: true });
    throw err;
  });
}

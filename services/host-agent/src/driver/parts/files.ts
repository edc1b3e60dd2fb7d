import { realpath } from "node:fs/promises";
import { writeGuestFile } from "../guest-files.js";
import { mountPoints } from "../rootfs.js";
import type { MachinePart, RunSetup } from "./part.js";

/**
 * The files of a machine's config (`files`), written into its root filesystem before every run, so
 * each start (and an update, which starts a fresh root filesystem) has them as the config says. Owned
 * by the user the machine runs as (its ids shifted into the machine's range, as the root filesystem
 * stores them); folders made for them belong to the machine's root. Needs the rootfs part before it.
 * Nothing to release: the files live in the root filesystem, which goes with the machine.
 */
export class FilesPart implements MachinePart {
  readonly name = "files";

  async prepare(run: RunSetup): Promise<void> {
    const files = run.spec.files ?? [];
    if (files.length === 0) return;
    const { rootfs, range } = run;
    if (rootfs === null || range === null) throw new Error("the root filesystem is not ready");
    const user = run.user ?? { uid: 0, gid: 0 };
    // An id outside the machine's range would name a host id of another machine's range.
    if (user.uid >= range.size || user.gid >= range.size || user.uid < 0 || user.gid < 0)
      throw new Error(
        `the image's user ${user.uid}:${user.gid} is outside the machine's ${range.size} ids: its files cannot be owned by it`,
      );
    const owners = {
      file: { uid: range.hostId + user.uid, gid: range.hostId + user.gid },
      folder: { uid: range.hostId, gid: range.hostId },
    };
    // A dir: machine's root holds binds of the host's folders and of its app folder: never written to.
    // Its real path, as the mount table names mount points.
    const root = await realpath(rootfs);
    const mounts = new Set(mountPoints());
    for (const { guestPath, content, mode } of files) {
      await writeGuestFile(root, guestPath, content, mode, owners, mounts);
    }
  }

  async release(): Promise<void> {}
}

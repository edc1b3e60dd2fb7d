import { chown, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { VolumeDisks } from "../../volumes/disk.js";
import { writeJsonAtomic } from "../state.js";
import type { MachinePart, MachineTeardown, RunSetup } from "./part.js";

/** volumes.json in a machine's folder: the volumes mounted on the host for it. */
interface VolumesRecord {
  volumes: string[];
}

/**
 * A machine's volumes: each is attached to a loop device and mounted on the host (reused when it
 * already is: a machine that outlived its agent keeps its device and mount), then bound into the
 * sandbox at its path through an idmapped mount, so files are stored with the machine's own ids
 * (0..65535) and the volume works in any org's range. A fresh volume's root is given to the image's
 * user, so an image that runs as a user can write to it, as it could to a folder of its own. Volumes
 * stay mounted across runs (unless an extend waits for the next start to grow the filesystem) and are
 * released at destroy (or when a new version no longer mounts them).
 */
export class VolumesPart implements MachinePart {
  readonly name = "volumes";

  /** `disks` is absent on an agent without volumes: a machine with mounts then cannot start. */
  constructor(private readonly disks: VolumeDisks | undefined) {}

  async prepare(run: RunSetup): Promise<void> {
    const mounts = run.spec.volumes ?? [];
    const recordPath = join(run.dir.path, "volumes.json");
    const before = (await readRecord(recordPath))?.volumes ?? [];
    if (before.length === 0 && mounts.length === 0) return;
    const { disks } = this;
    if (!disks)
      throw new Error("this host agent keeps no volumes (no volumes folder), so it cannot mount them");
    const wanted = new Set(mounts.map((m) => m.volume));
    // Recorded first: a crash between a mount and the record still leaves the mount accounted for.
    await writeJsonAtomic(recordPath, {
      volumes: [...new Set([...before, ...wanted])],
    } satisfies VolumesRecord);
    for (const id of before) if (!wanted.has(id)) await disks.serial(id, () => disks.unmount(id));
    // The image's user (resolved once by the rootfs part); root's volumes stay as mkfs made them.
    const owner = run.user && run.user.uid !== 0 ? run.user : null;
    for (const { volume: volumeId, path } of mounts) {
      const at = await disks.serial(volumeId, async () => {
        // An extend the agent could not apply online waits for the machine's next start, which is now:
        // nothing uses the volume between two runs, so it is unmounted and grown as it mounts again.
        if (disks.isMounted(volumeId) && (await disks.growPending(volumeId))) await disks.unmount(volumeId);
        return disks.mount(volumeId);
      });
      if (owner) await giveFreshRoot(at, owner);
      run.binds.push({ src: at, dest: path, readOnly: false, idmap: true });
    }
    await writeJsonAtomic(recordPath, { volumes: [...wanted] } satisfies VolumesRecord);
  }

  /** Unmounts the machine's volumes and detaches their loop devices. */
  async release({ dir, lastRun }: MachineTeardown): Promise<void> {
    const { disks } = this;
    if (!disks) return;
    const recorded = (await readRecord(join(dir.path, "volumes.json")))?.volumes ?? [];
    const ids = new Set([...recorded, ...(lastRun?.spec.volumes ?? []).map((m) => m.volume)]);
    for (const id of ids) await disks.serial(id, () => disks.unmount(id));
    await rm(join(dir.path, "volumes.json"), { force: true });
  }
}

async function readRecord(path: string): Promise<VolumesRecord | null> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as VolumesRecord;
  } catch {
    return null;
  }
}

/**
 * Gives a volume's root to `owner` while the volume is as mkfs made it (root's, holding only
 * lost+found); a volume with data keeps the ownership it has. The ids are stored as they are: the
 * host mount has no idmap, and the machine sees them through its idmapped bind.
 */
async function giveFreshRoot(at: string, owner: { uid: number; gid: number }): Promise<void> {
  const st = await stat(at);
  if (st.uid !== 0 || st.gid !== 0) return;
  const entries = await readdir(at);
  if (entries.some((e) => e !== "lost+found")) return;
  await chown(at, owner.uid, owner.gid);
}

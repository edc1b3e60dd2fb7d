import { prepareRootfs, releaseRootfs } from "../rootfs.js";
import type { MachinePart, MachineTeardown, RunSetup } from "./part.js";

/**
 * The root filesystem of a sandboxed machine: an overlay of its image's layers under a writable layer
 * kept in the state folder, which survives stops of the same machine version and image.
 */
export class RootfsPart implements MachinePart {
  readonly name = "root filesystem";

  async prepare(run: RunSetup): Promise<void> {
    const { spec } = run;
    if (!spec.sandbox) return;
    // The machine version is part of the key: Fly gives an updated machine a fresh root filesystem.
    const key = `${spec.instanceId} ${spec.sandbox.image}`;
    run.rootfs = await prepareRootfs(run.dir.path, key, spec.sandbox.lowers);
  }

  /** Unmounted before the state folder goes: removing it must never reach into a mounted root filesystem. */
  async release({ dir }: MachineTeardown): Promise<void> {
    await releaseRootfs(dir.path);
  }
}

import { deleteContainer, removeBundle, resolveUser } from "@hangar/oci";
import { IdRanges } from "../id-ranges.js";
import { prepareHostView, prepareRootfs, releaseRootfs } from "../rootfs.js";
import { containerIdOf } from "../sandbox.js";
import type { MachineRunSpec } from "../types.js";
import type { MachinePart, MachineTeardown, RunSetup } from "./part.js";

/**
 * The root filesystem of a machine and the id range it runs as. An OCI image's: an overlay of its
 * layers, idmapped into the range, under a writable layer kept in the state folder, which survives
 * stops of the same machine version and image. A dir: machine's: read-only binds of the host's
 * programs and its app folder (development only). Release also drops what crun keeps of the container.
 */
export class RootfsPart implements MachinePart {
  readonly name = "root filesystem";
  readonly #ranges: IdRanges;

  constructor(private readonly stateDir: string) {
    this.#ranges = new IdRanges();
  }

  async prepare(run: RunSetup): Promise<void> {
    const { spec } = run;
    const range = await this.#ranges.rangeOf(tenantOf(spec));
    run.range = range;
    if (!spec.sandbox) {
      run.rootfs = await prepareHostView(run.dir.path, spec.cwd, range);
      run.user = { uid: 0, gid: 0 };
      return;
    }
    // The machine version is part of the key: Fly gives an updated machine a fresh root filesystem.
    const key = `${spec.instanceId} ${spec.sandbox.image}`;
    run.rootfs = await prepareRootfs(run.dir.path, key, spec.sandbox.lowers, range);
    const { user } = spec.sandbox;
    run.user = user === "" ? { uid: 0, gid: 0 } : await resolveUser(run.rootfs, user);
  }

  /** Unmounted before the state folder goes: removing it must never reach into a mounted root filesystem. */
  async release({ machineId, dir }: MachineTeardown): Promise<void> {
    const id = containerIdOf(this.stateDir, machineId);
    await deleteContainer(id);
    await removeBundle(id);
    await releaseRootfs(dir.path);
  }
}

/** Whose id range a machine runs in: its organization's; an app of no known org is a tenant of its own. */
function tenantOf(spec: MachineRunSpec): string {
  return spec.org ? `org:${spec.org}` : `app:${spec.app}`;
}

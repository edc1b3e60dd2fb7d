import type { Volume } from "@hangar/domain";
import { ApiError } from "../http/errors.js";

/** The volumes machines mount: the app's volumes as the gateway sees them, and the volume service's attach and detach. */
export interface MachineVolumes {
  volumesOf(app: string): Volume[];
  attach(app: string, volumeId: string, machineId: string): Promise<void>;
  detach(app: string, volumeId: string, machineId: string): Promise<void>;
}

/** A machine mount as the API takes it (Fly's api.MachineMount): a volume by id, or by name. */
export interface MountInput {
  volume?: string | null;
  name?: string | null;
  path: string;
  [key: string]: unknown;
}

/** What a machine config needs to say about its mounts here. */
export interface WithMounts {
  mounts?: MountInput[] | null;
  [key: string]: unknown;
}

/** A create's mount resolved to one of the app's volumes: where the machine must run, and its config. */
export interface ResolvedMount<C extends WithMounts> {
  volume: Volume;
  /** The machine's region: the one asked for, else the volume's. */
  region: string;
  /** The config with the mount naming the volume by id (what the host agent mounts). */
  config: C;
}

const usable = (v: Volume) => v.state === "created" || v.state === "extending";

/** The config's one mount, or undefined; more than one is refused as Fly refuses it. */
function onlyMount(config: WithMounts): MountInput | undefined {
  const mounts = config.mounts ?? [];
  if (mounts.length > 1) {
    throw ApiError.of(
      "invalid_argument",
      `config.mounts: a machine mounts at most one volume, not ${mounts.length}`,
    );
  }
  const [mount] = mounts;
  if (mount && !mount.volume && !mount.name) {
    throw ApiError.of(
      "invalid_argument",
      "config.mounts.0: name the volume, by id (volume) or by name (name)",
    );
  }
  return mount;
}

/** The config with its one mount naming `v` by id and name. */
function mounting<C extends WithMounts>(config: C, mount: MountInput, v: Volume): C {
  return { ...config, mounts: [{ ...mount, volume: v.id, name: v.name }] };
}

/**
 * Resolves a machine create's mount against the app's volumes: a `volume` id must be one of the app's
 * usable volumes; a `name` alone picks an unattached usable volume of that name in the machine's
 * region (the oldest). A region asked for that is not the volume's is refused: a volume never leaves
 * its host. Undefined when the config mounts nothing. Whether the volume is attached to another
 * machine is the attach's to say (a 409), so two creates cannot both take it.
 */
export function resolveCreateMount<C extends WithMounts>(
  app: string,
  volumes: readonly Volume[],
  config: C,
  region: { asked: string | undefined; fallback: string },
): ResolvedMount<C> | undefined {
  const mount = onlyMount(config);
  if (!mount) return undefined;
  let volume: Volume;
  if (mount.volume) {
    const found = volumes.find((v) => v.id === mount.volume && v.state !== "destroyed");
    if (!found) throw ApiError.of("not_found", `volume ${mount.volume} not found in app ${app}`);
    if (!usable(found)) {
      throw ApiError.of(
        "failed_precondition",
        `volume ${found.id} is ${found.state}: a machine cannot mount it`,
      );
    }
    volume = found;
  } else {
    const where = region.asked ?? region.fallback;
    const free = volumes.find(
      (v) => v.name === mount.name && v.region === where && usable(v) && v.attached_machine_id === null,
    );
    if (!free) {
      throw ApiError.of(
        "not_found",
        `no unattached volume named ${mount.name} in region ${where} of app ${app}; create one with \`hangar volumes create ${mount.name} --region ${where} -a ${app}\``,
      );
    }
    volume = free;
  }
  if (region.asked !== undefined && region.asked !== volume.region) {
    throw ApiError.of(
      "invalid_argument",
      `volume ${volume.id} is in region ${volume.region}; the machine is in ${region.asked}`,
    );
  }
  return { volume, region: volume.region, config: mounting(config, mount, volume) };
}

/**
 * The config an update records for a machine that has `current` attached (or none): the machine
 * keeps its volume, so a deploy replaces its image on the same disk. A mount naming the volume by id
 * or by name keeps it (at the path given); no mounts keeps the current mount; another volume, or a
 * volume for a machine that has none, is refused: a machine's volume is chosen when it is created.
 */
export function keepUpdateMount<C extends WithMounts>(
  machineId: string,
  current: { volume: Volume; mount: MountInput } | undefined,
  config: C,
): C {
  const mount = onlyMount(config);
  if (!current) {
    if (!mount) return config;
    throw ApiError.of(
      "invalid_argument",
      `machine ${machineId} has no volume, and an update does not add one: create a machine with the mount instead`,
    );
  }
  if (!mount) return mounting(config, current.mount, current.volume);
  const same = mount.volume ? mount.volume === current.volume.id : mount.name === current.volume.name;
  if (!same) {
    throw ApiError.of(
      "invalid_argument",
      `machine ${machineId} has volume ${current.volume.id} (${current.volume.name}); a machine keeps its volume: create another machine for ${mount.volume ?? mount.name}`,
    );
  }
  return mounting(config, mount, current.volume);
}

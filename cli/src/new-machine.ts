// A new machine made like an existing one, as `hangar machine clone` and `hangar scale count` make
// them (flyctl's clone.go and scale's launchMachine): the same config, standbys dropped, and, when it
// mounts a volume, a volume of its own with the same name and size (a volume is attached to one
// machine at a time).
import { DEFAULT_VOLUME_SIZE_GB } from "@hangar/config";
import type { ApiClient } from "./api.js";
import type { Machine, MachineConfig, Volume } from "./types.js";

/** The part of the API that new machines and their volumes need. */
export type NewMachineApi = Pick<ApiClient, "createMachine" | "listVolumes" | "createVolume">;

/** The config of a copy of a machine: standbys dropped (a copy does not stand by), the rest kept. */
export function copiedConfig(config: MachineConfig): MachineConfig {
  const { standbys: _standbys, ...rest } = config;
  const env = { ...(config.env ?? {}) };
  delete env.FLY_STANDBY_FOR;
  return { ...rest, ...(config.env ? { env } : {}) };
}

/** The config with its (first) mount on `volume`, by id. */
export function mountedOn(config: MachineConfig, volume: Volume): MachineConfig {
  const [mount, ...others] = config.mounts ?? [];
  if (!mount) return config;
  const { size_gb: _size, name: _name, ...rest } = mount;
  return { ...config, mounts: [{ ...rest, volume: volume.id }, ...others] };
}

/**
 * Volumes for new machines: with `reuseUnattached` (scale count), an unattached volume of the mount's
 * name in the machine's region first, as flyctl's scale count does; otherwise (clone), always a new
 * empty one. A new one has the name, and the size of the largest volume of that name (the source's).
 */
export class NewVolumes {
  private volumes: Volume[] | undefined;
  readonly created: Volume[] = [];

  constructor(
    private readonly api: NewMachineApi,
    private readonly app: string,
    private readonly progress: (text: string) => void,
    private readonly reuseUnattached: boolean,
  ) {}

  private async all(): Promise<Volume[]> {
    this.volumes ??= await this.api.listVolumes(this.app);
    return this.volumes;
  }

  /** A volume for a new machine with `config`'s mount in `region` ("" for the platform's default). */
  async take(config: MachineConfig, region: string): Promise<Volume> {
    const mount = config.mounts?.[0];
    if (!mount) throw new Error("the config mounts no volume");
    const volumes = await this.all();
    const source = mount.volume ? volumes.find((v) => v.id === mount.volume) : undefined;
    const name = mount.name ?? source?.name;
    if (!name) throw new Error(`volume ${mount.volume} of the machine is not one of the app's volumes`);
    if (this.reuseUnattached) {
      const i = volumes.findIndex(
        (v) =>
          v.name === name &&
          v.state === "created" &&
          !v.attached_machine_id &&
          (region === "" || v.region === region),
      );
      const found = i >= 0 ? volumes.splice(i, 1)[0] : undefined;
      if (found) {
        this.progress(`  Using unattached volume ${found.id} (${found.name}) in region ${found.region}\n`);
        return found;
      }
    }
    const sizes = volumes.filter((v) => v.name === name).map((v) => v.size_gb);
    const size_gb = Math.max(...sizes, mount.size_gb ?? DEFAULT_VOLUME_SIZE_GB);
    const volume = await this.api.createVolume(this.app, { name, size_gb, ...(region ? { region } : {}) });
    this.created.push(volume);
    this.progress(
      `  Created volume ${volume.id} (${volume.name}, ${volume.size_gb}GB) in region ${volume.region}\n`,
    );
    return volume;
  }
}

/** Creates a machine with `config` in `region` ("" for the default), on a volume of `volumes` when it mounts one. */
export async function createLike(
  api: NewMachineApi,
  app: string,
  config: MachineConfig,
  region: string,
  volumes: NewVolumes,
  name?: string,
): Promise<Machine> {
  const base = copiedConfig(config);
  const withVolume = base.mounts?.length ? mountedOn(base, await volumes.take(base, region)) : base;
  return api.createMachine(app, {
    ...(name ? { name } : {}),
    ...(region ? { region } : {}),
    config: withVolume,
  });
}

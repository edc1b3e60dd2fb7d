import { createInterface } from "node:readline/promises";
import {
  isSnapshotId,
  isVolumeId,
  SNAPSHOT_ID_EXAMPLE,
  VOLUME_ID_EXAMPLE,
  volumeNameProblem,
} from "@hangar/domain/volume-ids";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { ApiClient } from "../api.js";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import { CliError } from "../cli-error.js";
import { type Context, printJson } from "../context.js";
import { positiveInt } from "../options.js";
import { ago, formatTable } from "../table.js";
import type { CreateVolumeRequest, Volume, VolumeSnapshot } from "../types.js";

interface AppFlags {
  app?: string;
  json?: boolean;
}

interface CreateFlags extends AppFlags {
  size?: number;
  region?: string;
  snapshotId?: string;
  count: number;
  snapshotRetention?: number;
  requireUniqueZone?: boolean;
}

/** A volume id argument, checked (the domain's isVolumeId) before any call: the API would only answer 400. */
export function volumeId(value: string): string {
  if (!isVolumeId(value)) {
    throw new InvalidArgumentError(
      `expected a volume id such as ${VOLUME_ID_EXAMPLE} (see \`hangar volumes list\`)`,
    );
  }
  return value;
}

/** A snapshot id option, checked (the domain's isSnapshotId) before any call. */
export function snapshotId(value: string): string {
  if (!isSnapshotId(value)) {
    throw new InvalidArgumentError(
      `expected a snapshot id such as ${SNAPSHOT_ID_EXAMPLE} (see \`hangar volumes snapshots list\`)`,
    );
  }
  return value;
}

/** A volume name as Fly allows it (the domain's volumeNameProblem: lowercase letters, digits, underscores; at most 30). */
export function volumeName(value: string): string {
  if (volumeNameProblem(value) !== undefined) {
    throw new InvalidArgumentError("expected lowercase letters, digits and underscores (at most 30)");
  }
  return value;
}

const gb = (n: number) => `${n}GB`;

/** The table of `hangar volumes list`, as flyctl's. */
export function volumesTable(volumes: readonly Volume[], now: number = Date.now()): string {
  const rows = volumes.map((v) => [
    v.id,
    v.state,
    v.name,
    gb(v.size_gb),
    v.region,
    v.zone,
    v.attached_machine_id ?? "",
    ago(v.created_at, now),
  ]);
  return formatTable(["ID", "STATE", "NAME", "SIZE", "REGION", "ZONE", "ATTACHED VM", "CREATED"], rows);
}

/** What `hangar volumes show` prints: one field a line, with the filesystem's use when the host told. */
export function volumeDetails(v: Volume): string {
  const used = v.blocks > 0 ? (v.blocks - v.blocks_free) * v.block_size : undefined;
  const lines: Array<[string, string]> = [
    ["ID", v.id],
    ["Name", v.name],
    ["State", v.state],
    ["Size", gb(v.size_gb)],
    ["Region", v.region],
    ["Zone", v.zone],
    ["Attached VM", v.attached_machine_id ?? "-"],
    ["Used", used === undefined ? "-" : `${(used / 2 ** 30).toFixed(2)}GiB of ${gb(v.size_gb)}`],
    ["Filesystem", `${v.fstype}${v.encrypted ? ", encrypted" : ""}`],
    ["Snapshot retention", `${v.snapshot_retention} days`],
    ["Scheduled snapshots", v.auto_backup_enabled === false ? "off" : "daily"],
    ["Created", v.created_at],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, value]) => `${k.padEnd(width)}  ${value}\n`).join("");
}

/** The table of `hangar volumes snapshots list`. */
export function snapshotsTable(snapshots: readonly VolumeSnapshot[], now: number = Date.now()): string {
  const rows = snapshots.map((s) => [
    s.id,
    s.status,
    `${(s.size / 2 ** 20).toFixed(1)}MiB`,
    s.type ?? "",
    s.retention_days === undefined ? "" : `${s.retention_days}d`,
    ago(s.created_at, now),
  ]);
  return formatTable(["ID", "STATUS", "SIZE", "TYPE", "RETENTION", "CREATED"], rows);
}

async function appOf(ctx: Context, flags: AppFlags): Promise<string> {
  return resolveAppName(flags.app, flags.app ? undefined : await loadAppConfig(ctx.cwd));
}

/**
 * Asks on the terminal whether to destroy the volume; without a terminal (a script, CI) it refuses
 * rather than guess, so that only `--yes` destroys data unattended.
 */
async function confirmDestroy(ctx: Context, v: Volume): Promise<boolean> {
  const input = ctx.stdin;
  if (!input?.isTTY) {
    throw new CliError(
      `refusing to destroy volume ${v.id} without confirmation (no terminal to ask on)`,
      `pass --yes to confirm: \`hangar volumes destroy ${v.id} --yes\``,
    );
  }
  const rl = createInterface({ input, terminal: false });
  try {
    ctx.err(`Destroy volume ${v.id} (${v.name}, ${gb(v.size_gb)})? Its data is gone for good. [y/N] `);
    const answer = await rl[Symbol.asyncIterator]().next();
    return /^y(es)?$/i.test(String(answer.value ?? "").trim());
  } finally {
    rl.close();
  }
}

/** Creates `count` volumes one after the other, each reported as it is made. */
async function createVolumes(
  api: ApiClient,
  app: string,
  body: CreateVolumeRequest,
  count: number,
  progress: (text: string) => void,
): Promise<Volume[]> {
  const created: Volume[] = [];
  for (let i = 0; i < count; i++) {
    const v = await api.createVolume(app, body);
    progress(
      `Created volume ${v.id} (${v.name}, ${gb(v.size_gb)}) in region ${v.region} on host ${v.zone}\n`,
    );
    created.push(v);
  }
  return created;
}

function withApp(cmd: Command): Command {
  return cmd
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option("--json", "print the API's JSON");
}

/** `hangar volumes create|list|show|extend|fork|destroy` and `hangar volumes snapshots list|create`, as flyctl's. */
export function registerVolumes(program: Command, ctx: Context): void {
  const volumes = program
    .command("volumes")
    .alias("volume")
    .description("persistent disks: one host, one region, one machine at a time, snapshotted daily");

  withApp(
    volumes.command("create").argument("<name>", "volume name, as [mounts] source names it", volumeName),
  )
    .description("create volumes named <name>: ext4 disks on a host of the region")
    .addOption(
      new Option("-s, --size <gb>", "size in GB (default 1; a restore: the snapshot's size)").argParser(
        positiveInt,
      ),
    )
    .option("-r, --region <region>", "region (default: the platform's)")
    .option("--snapshot-id <id>", "restore this snapshot into the new volume", snapshotId)
    .addOption(new Option("-n, --count <n>", "how many volumes to create").argParser(positiveInt).default(1))
    .addOption(new Option("--snapshot-retention <days>", "days to keep snapshots (5)").argParser(positiveInt))
    .option("--require-unique-zone", "put each volume on a host that has none of this name yet")
    .action(async (name: string, flags: CreateFlags) => {
      const app = await appOf(ctx, flags);
      const body: CreateVolumeRequest = {
        name,
        ...(flags.size || !flags.snapshotId ? { size_gb: flags.size ?? 1 } : {}),
        ...(flags.region ? { region: flags.region } : {}),
        ...(flags.snapshotId ? { snapshot_id: flags.snapshotId } : {}),
        ...(flags.snapshotRetention ? { snapshot_retention: flags.snapshotRetention } : {}),
        ...(flags.requireUniqueZone ? { require_unique_zone: true } : {}),
      };
      const api = await ctx.api();
      const created = await createVolumes(api, app, body, flags.count, flags.json ? ctx.err : ctx.out);
      if (flags.json) printJson(ctx, flags.count === 1 ? created[0] : created);
    });

  withApp(volumes.command("list"))
    .description("list the app's volumes")
    .action(async (flags: AppFlags) => {
      const app = await appOf(ctx, flags);
      const list = await (await ctx.api()).listVolumes(app);
      if (flags.json) return printJson(ctx, list);
      if (list.length === 0) {
        return ctx.out(
          `App ${app} has no volumes: create one with \`hangar volumes create data -a ${app}\`\n`,
        );
      }
      ctx.out(volumesTable(list));
    });

  withApp(volumes.command("show").argument("<id>", "volume id (vol_...)", volumeId))
    .description("show a volume: size, host, attached machine, use")
    .action(async (id: string, flags: AppFlags) => {
      const app = await appOf(ctx, flags);
      const v = await (await ctx.api()).getVolume(app, id);
      if (flags.json) return printJson(ctx, v);
      ctx.out(volumeDetails(v));
    });

  withApp(volumes.command("extend").argument("<id>", "volume id (vol_...)", volumeId))
    .description("grow a volume, mounted or not: the machine sees the new size without a restart")
    .requiredOption("-s, --size <gb>", "the new size in GB, larger than the current one", positiveInt)
    .action(async (id: string, flags: AppFlags & { size: number }) => {
      const app = await appOf(ctx, flags);
      const res = await (await ctx.api()).extendVolume(app, id, flags.size);
      if (flags.json) return printJson(ctx, res);
      const restart = res.needs_restart ? "; restart its machine to use it" : "";
      ctx.out(`Volume ${res.volume.id} extended to ${gb(res.volume.size_gb)}${restart}\n`);
    });

  withApp(volumes.command("fork").argument("<id>", "volume id (vol_...)", volumeId))
    .description("copy a volume into a new one, on another host of the region (or of --region)")
    .option("-r, --region <region>", "region of the copy (default: the volume's)")
    .option("--name <name>", "name of the copy (default: the volume's)", volumeName)
    .action(async (id: string, flags: AppFlags & { region?: string; name?: string }) => {
      const app = await appOf(ctx, flags);
      const api = await ctx.api();
      const source = await api.getVolume(app, id);
      const [fork] = await createVolumes(
        api,
        app,
        {
          name: flags.name ?? source.name,
          region: flags.region ?? source.region,
          size_gb: source.size_gb,
          source_volume_id: source.id,
        },
        1,
        flags.json ? ctx.err : ctx.out,
      );
      if (flags.json) printJson(ctx, fork);
    });

  withApp(volumes.command("destroy").argument("<id>", "volume id (vol_...)", volumeId))
    .alias("delete")
    .description("destroy a volume and its data (refused while a machine has it attached)")
    .option("-y, --yes", "do not ask for confirmation")
    .action(async (id: string, flags: AppFlags & { yes?: boolean }) => {
      const app = await appOf(ctx, flags);
      const api = await ctx.api();
      // The volume is read first so that the question names what would be lost; a machine that has it
      // attached makes the API refuse the destroy, whatever the answer.
      const v = await api.getVolume(app, id);
      if (!flags.yes && !(await confirmDestroy(ctx, v)))
        throw new CliError(`volume ${v.id} was not destroyed`);
      const destroyed = await api.destroyVolume(app, v.id);
      if (flags.json) return printJson(ctx, destroyed);
      ctx.out(`Volume ${v.id} (${v.name}) destroyed\n`);
    });

  const snapshots = volumes.command("snapshots").description("a volume's snapshots: daily and on demand");

  withApp(snapshots.command("list").argument("<id>", "volume id (vol_...)", volumeId))
    .description("list a volume's snapshots")
    .action(async (id: string, flags: AppFlags) => {
      const app = await appOf(ctx, flags);
      const list = await (await ctx.api()).listVolumeSnapshots(app, id);
      if (flags.json) return printJson(ctx, list);
      if (list.length === 0) {
        return ctx.out(
          `Volume ${id} has no snapshots: take one with \`hangar volumes snapshots create ${id} -a ${app}\`\n`,
        );
      }
      ctx.out(snapshotsTable(list));
    });

  withApp(snapshots.command("create").argument("<id>", "volume id (vol_...)", volumeId))
    .description("snapshot a volume now (a mounted one is frozen for the copy), kept as its retention says")
    .action(async (id: string, flags: AppFlags) => {
      const app = await appOf(ctx, flags);
      const s = await (await ctx.api()).createVolumeSnapshot(app, id);
      if (flags.json) return printJson(ctx, s);
      ctx.out(
        `Snapshot ${s.id} of volume ${id} ${s.status} (${(s.size / 2 ** 20).toFixed(1)}MiB, ${s.digest})\n`,
      );
    });
}

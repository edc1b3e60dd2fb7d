import { type AppConfig, machineConfigFromApp, processGroups } from "@hangar/config";
import { type Command, InvalidArgumentError } from "commander";
import type { ApiClient } from "../api.js";
import { APP_OPTION_HELP, appFromConfigHook } from "../app-config.js";
import { CliError } from "../cli-error.js";
import { confirm } from "../confirm.js";
import { type Context, printJson } from "../context.js";
import { guestOfSize, sizeName, updateAndWait } from "../machine-update.js";
import { createLike, NewVolumes } from "../new-machine.js";
import { positiveInt, waitTimeoutOption } from "../options.js";
import {
  deployedMachines,
  groupOf,
  liveMachines,
  planScaleCount,
  type ScaleAction,
  UNLABELLED_GROUP,
} from "../scale-plan.js";
import { formatTable } from "../table.js";
import type { Machine, MachineConfig, Release } from "../types.js";

/** One process group as `fly scale show --json` prints it (flyctl's groupData). */
export interface ScaleGroup {
  Process: string;
  Count: number;
  CPUKind: string;
  CPUs: number;
  Memory: number;
  Regions: Record<string, number>;
}

/**
 * An app's machines by process group (`fly_process_group` metadata, `app` without one), sorted by
 * name, each with its count, the first machine's guest (as flyctl shows it) and its regions.
 * Destroyed machines, and ones without a config, are left out.
 */
export function scaleGroups(machines: Machine[]): ScaleGroup[] {
  const groups = new Map<string, Machine[]>();
  for (const m of liveMachines(machines)) groups.set(groupOf(m), [...(groups.get(groupOf(m)) ?? []), m]);
  return [...groups.keys()].sort().map((name) => {
    const members = groups.get(name) as Machine[];
    const guest = members[0]?.config?.guest ?? {};
    const regions: Record<string, number> = {};
    for (const m of members) regions[m.region ?? ""] = (regions[m.region ?? ""] ?? 0) + 1;
    return {
      Process: name,
      Count: members.length,
      CPUKind: guest.cpu_kind ?? "shared",
      CPUs: guest.cpus ?? 1,
      Memory: guest.memory_mb ?? 256,
      Regions: regions,
    };
  });
}

/** `iad(2),lhr`: each region with its count when above one, sorted, as flyctl prints them. */
export function formatRegions(regions: Record<string, number>): string {
  return Object.entries(regions)
    .map(([region, n]) => (n > 1 ? `${region}(${n})` : region))
    .sort()
    .join(",");
}

/** The table of `hangar scale show`. */
export function scaleShowText(app: string, groups: ScaleGroup[]): string {
  const rows = groups.map((g) => [
    g.Process,
    String(g.Count),
    g.CPUKind,
    String(g.CPUs),
    `${g.Memory} MB`,
    formatRegions(g.Regions),
  ]);
  return `VM Resources for app: ${app}\n\nGroups\n${formatTable(["NAME", "COUNT", "KIND", "CPUS", "MEMORY", "REGIONS"], rows)}`;
}

/** The app's current release: its newest succeeded one, if it has any. */
async function currentRelease(api: ApiClient, app: string): Promise<Release | undefined> {
  return (await api.listReleases(app)).find((r) => r.status === "succeeded");
}

/** The app config a release runs with, when it recorded one. */
function releaseConfig(release: Release | undefined): AppConfig | undefined {
  return release?.config ? (release.config as AppConfig) : undefined;
}

/**
 * The process groups a scale command may name: those of the current release's config, else (an app
 * no deploy made) those its machines have.
 */
export function knownGroups(machines: Machine[], config: AppConfig | undefined): string[] {
  if (config) return processGroups(config);
  const present = [...new Set(liveMachines(machines).map(groupOf))].sort();
  return present.length > 0 ? present : [UNLABELLED_GROUP];
}

/** --process-group if it is one of `known`, else the only group; several without the flag is an error. */
export function pickGroup(flag: string | undefined, known: string[]): string {
  if (flag !== undefined) {
    if (known.includes(flag)) return flag;
    throw new CliError(
      `process group ${flag} is not one of the app's process groups (${known.join(", ")})`,
      "pass --process-group with one of them, or add it to [processes] and deploy",
    );
  }
  if (known.length === 1) return known[0] as string;
  throw new CliError(
    `the app has several process groups (${known.join(", ")})`,
    "pick one with --process-group <name>",
  );
}

/**
 * The config new machines of a group start from: a machine of the group on the current release (so
 * they carry its fly_process_group and release metadata), else any of its machines, else (a group
 * without machines) the release's config for the group, as flyctl's scale count makes it.
 */
export function groupSourceConfig(
  members: Machine[],
  group: string,
  release: Release | undefined,
): MachineConfig {
  const version = release ? String(release.version) : undefined;
  const source = members.find((m) => m.config?.metadata?.hangar_release === version) ?? members[0];
  if (source?.config) return source.config;
  const config = releaseConfig(release);
  if (config && release?.image) {
    return machineConfigFromApp(config, release.image, {
      processGroup: group,
      release: release.version,
    }) as unknown as MachineConfig;
  }
  throw new CliError(
    `process group ${group} has no machine to copy and the app has no release to make one from`,
    "deploy the app first with `hangar deploy`",
  );
}

function count(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError("expected the number of machines, a whole number >= 0");
  }
  return n;
}

const where = (region: string) => (region === "" ? "the default region" : `region '${region}'`);

/** The plan as flyctl prints it: one line per group and region. */
export function planText(app: string, actions: ScaleAction[], size: string): string {
  const lines = actions.map(
    (a) =>
      `${a.delta > 0 ? "+" : ""}${a.delta} machines for group '${a.group}' on ${where(a.region)} of size '${size}'`,
  );
  return `App '${app}' is going to be scaled according to this plan:\n${lines.map((l) => `  ${l}\n`).join("")}`;
}

interface CountFlags {
  app: string;
  processGroup?: string;
  region?: string;
  yes?: boolean;
  json?: boolean;
}

async function scaleCount(ctx: Context, n: number, flags: CountFlags): Promise<void> {
  const api = await ctx.api();
  const progress = flags.json ? ctx.err : ctx.out;
  const [machines, release] = await Promise.all([
    api.listMachines(flags.app),
    currentRelease(api, flags.app),
  ]);
  if (release?.edge)
    throw new CliError(
      `app ${flags.app} is an edge app: its code runs in every proxy, with no machines to scale`,
      "its limits are [edge] cpu_ms and memory_mb in hangar.toml (then `hangar deploy`)",
    );
  const config = releaseConfig(release);
  const group = pickGroup(flags.processGroup, knownGroups(machines, config));
  const actions = planScaleCount({
    machines,
    group,
    count: n,
    regions: flags.region?.split(","),
    ...(config?.primary_region ? { primaryRegion: config.primary_region } : {}),
  });
  const summary = { app: flags.app, group, count: n, created: [] as string[], destroyed: [] as string[] };
  const plan = actions.map((a) => ({ region: a.region, delta: a.delta }));
  if (actions.length === 0) {
    progress("App already scaled to desired state. No need for changes\n");
    if (flags.json) printJson(ctx, { ...summary, plan });
    return;
  }
  const members = deployedMachines(machines).filter((m) => groupOf(m) === group);
  const source = actions.some((a) => a.delta > 0) ? groupSourceConfig(members, group, release) : undefined;
  const size = sizeName(source?.guest ?? members[0]?.config?.guest);
  progress(planText(flags.app, actions, size));
  if (!flags.yes && !(await confirm(ctx, `Scale app ${flags.app}?`, `not scaling app ${flags.app}`))) {
    throw new CliError(`app ${flags.app} was not scaled`);
  }
  progress("Executing scale plan\n");
  const volumes = new NewVolumes(api, flags.app, progress, true);
  for (const action of actions) {
    for (let i = 0; i < action.delta; i++) {
      const m = await createLike(api, flags.app, source as MachineConfig, action.region, volumes);
      summary.created.push(m.id);
      const volume = m.config?.mounts?.[0]?.volume;
      progress(
        `  Created ${m.id} group:${group} region:${m.region ?? action.region} size:${sizeName(m.config?.guest)}${volume ? ` volume:${volume}` : ""}\n`,
      );
    }
    for (const m of action.destroy) {
      await api.destroyMachine(flags.app, m.id, true);
      summary.destroyed.push(m.id);
      progress(
        `  Destroyed ${m.id} group:${group} region:${m.region ?? ""} size:${sizeName(m.config?.guest)}\n`,
      );
    }
  }
  if (flags.json) printJson(ctx, { ...summary, plan, volumes_created: volumes.created.map((v) => v.id) });
}

interface VmFlags {
  app: string;
  processGroup?: string;
  memory?: number;
  waitTimeout: number;
  json?: boolean;
}

async function scaleVm(ctx: Context, size: string, flags: VmFlags): Promise<void> {
  guestOfSize(size, flags.memory); // a bad size fails before any call
  const api = await ctx.api();
  const progress = flags.json ? ctx.err : ctx.out;
  const [machines, release] = await Promise.all([
    api.listMachines(flags.app),
    currentRelease(api, flags.app),
  ]);
  const group = pickGroup(flags.processGroup, knownGroups(machines, releaseConfig(release)));
  const members = deployedMachines(machines).filter((m) => groupOf(m) === group);
  if (members.length === 0) {
    throw new CliError(
      `no machines in process group ${group}`,
      `see the app's machines with \`hangar status -a ${flags.app}\``,
    );
  }
  const updated: Machine[] = [];
  for (const m of members) {
    const config = m.config as MachineConfig;
    const guest = guestOfSize(size, flags.memory, (config.guest ?? {}) as Record<string, unknown>);
    progress(`Updating machine ${m.id} (${group}) to ${size}... `);
    updated.push(await updateAndWait(api, flags.app, m, { ...config, guest }, flags.waitTimeout, progress));
  }
  const guest = updated[0]?.config?.guest ?? guestOfSize(size, flags.memory);
  if (flags.json) {
    return printJson(ctx, { app: flags.app, group, size, guest, machines: updated.map((m) => m.id) });
  }
  ctx.out(`Scaled VM Type for '${group}' to '${size}'\n`);
  ctx.out(`${"CPU Cores".padStart(15)}: ${guest.cpus ?? 1}\n`);
  ctx.out(`${"Memory".padStart(15)}: ${guest.memory_mb ?? 256} MB\n`);
}

/** `hangar scale show|count|vm`: an app's machines per process group, as `fly scale`. */
export function registerScale(program: Command, ctx: Context): void {
  const scale = program
    .command("scale")
    .description("show or change an app's machines per process group: their count and size")
    .hook("preAction", appFromConfigHook(ctx.cwd));
  scale
    .command("show")
    .description("show each process group's machine count, size and regions")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("--json", "print the groups as `fly scale show --json` does")
    .action(async (flags: { app: string; json?: boolean }) => {
      const machines = await (await ctx.api()).listMachines(flags.app);
      const groups = scaleGroups(machines);
      if (flags.json) return printJson(ctx, groups);
      if (groups.length === 0) return ctx.out(`No machines in app ${flags.app}\n`);
      ctx.out(scaleShowText(flags.app, groups));
    });
  scale
    .command("count <count>")
    .description(
      "create or destroy machines until a process group has <count> (in the regions given, else in each region the app runs in)",
    )
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("--process-group <name>", "the process group to scale (required when the app has several)")
    .option("-r, --region <regions>", "comma-separated regions to act on; others are left as they are")
    .option("-y, --yes", "do not ask for confirmation")
    .option("--json", "print what was created and destroyed as JSON")
    .action((value: string, flags: CountFlags) => {
      let n: number;
      try {
        n = count(value);
      } catch (err) {
        throw new CliError(`${value}: ${(err as Error).message}`, "e.g. `hangar scale count 3`");
      }
      return scaleCount(ctx, n, flags);
    });
  scale
    .command("vm <size>")
    .description(
      "change the VM size of every machine of a process group (e.g. shared-cpu-2x, performance-1x)",
    )
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("--process-group <name>", "the process group to resize (required when the app has several)")
    .option("--memory <mb>", "memory in MB, instead of the size's", positiveInt)
    .addOption(waitTimeoutOption(60, "1m", "each running machine to start again"))
    .option("--json", "print the new guest and the machines updated as JSON")
    .action((size: string, flags: VmFlags) => scaleVm(ctx, size, flags));
}

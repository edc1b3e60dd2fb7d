import type { Command } from "commander";
import { APP_OPTION_HELP, appFromConfigHook } from "../app-config.js";
import { type Context, printJson } from "../context.js";
import { formatTable } from "../table.js";
import type { Machine } from "../types.js";

/** One process group as `fly scale show --json` prints it (flyctl's groupData). */
export interface ScaleGroup {
  Process: string;
  Count: number;
  CPUKind: string;
  CPUs: number;
  Memory: number;
  Regions: Record<string, number>;
}

/** flyctl's default group, for a machine no deploy labelled (fly-go's MachineProcessGroupApp). */
const DEFAULT_GROUP = "app";

/**
 * An app's machines by process group (`fly_process_group` metadata, `app` without one), sorted by
 * name, each with its count, the first machine's guest (as flyctl shows it) and its regions.
 * Destroyed machines, and ones without a config, are left out.
 */
export function scaleGroups(machines: Machine[]): ScaleGroup[] {
  const groups = new Map<string, Machine[]>();
  for (const m of machines) {
    if (!m.config || m.state === "destroyed" || m.state === "destroying") continue;
    const group = m.config.metadata?.fly_process_group || DEFAULT_GROUP;
    groups.set(group, [...(groups.get(group) ?? []), m]);
  }
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

/** `hangar scale show`: an app's machines per process group, their size and regions, as `fly scale show`. */
export function registerScale(program: Command, ctx: Context): void {
  const scale = program
    .command("scale")
    .description("show an app's machines per process group")
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
}

import type { Command } from "commander";
import type { ApiClient } from "../api.js";
import { APP_OPTION_HELP, appFromConfigHook } from "../app-config.js";
import { CliError } from "../cli-error.js";
import { appUrl } from "../config.js";
import { confirm } from "../confirm.js";
import { type Context, printJson } from "../context.js";
import { withHint } from "../errors.js";
import { resolveImage } from "../image.js";
import { buildCreateMachineRequest } from "../machine-request.js";
import { guestOfSize, sizeName, updateAndWait } from "../machine-update.js";
import { createLike, NewVolumes } from "../new-machine.js";
import {
  durationSeconds,
  envPair,
  goDuration,
  port,
  positiveInt,
  restartPolicy,
  waitTimeoutOption,
} from "../options.js";
import type { MachineConfig, RestartPolicy, WaitState } from "../types.js";
import { machineDetails, machineTable } from "../views.js";
import { waitForState } from "../wait.js";
import { registerMachineExec } from "./exec.js";

interface RunFlags {
  app: string;
  port?: number;
  region?: string;
  env?: Record<string, string>;
  name?: string;
  cpus?: number;
  memory?: number;
  cmd?: string;
  restart?: RestartPolicy;
  rm?: boolean;
  detach?: boolean;
  waitTimeout: number;
  json?: boolean;
}

interface Waiting {
  api: ApiClient;
  app: string;
  id: string;
  state: WaitState;
  timeout: number;
  instanceId?: string;
  progress: (text: string) => void;
}

function logsHint(app: string, id: string): string {
  return `see what it printed with \`hangar logs -a ${app} --machine ${id}\`, and its events with \`hangar machine status ${id} -a ${app}\``;
}

/** Waits for a state, finishing the progress line with the state reached or "failed". */
async function waitAndReport(w: Waiting): Promise<void> {
  try {
    await waitForState(w.api, w.app, w.id, w.state, w.timeout, w.instanceId);
  } catch (err) {
    w.progress("failed\n");
    throw withHint(err, logsHint(w.app, w.id));
  }
  w.progress(`${w.state}\n`);
}

async function run(ctx: Context, imageArg: string, flags: RunFlags): Promise<void> {
  let image: string;
  try {
    image = resolveImage(imageArg, ctx.cwd);
  } catch (err) {
    throw new CliError(
      (err as Error).message,
      "give an image reference, `dir:<path>`, or the path of a folder",
    );
  }
  const body = buildCreateMachineRequest({
    image,
    name: flags.name,
    region: flags.region,
    port: flags.port,
    env: flags.env,
    cpus: flags.cpus,
    memoryMb: flags.memory,
    cmd: flags.cmd,
    restart: flags.restart,
    autoDestroy: flags.rm,
  });
  const api = await ctx.api();
  const progress = flags.json ? ctx.err : ctx.out;
  const machine = await api.createMachine(flags.app, body);
  const where = `Machine ${machine.id} created in region ${machine.region ?? "?"}`;
  if (flags.detach) {
    progress(`${where}\n`);
  } else {
    progress(`${where}, waiting for it to start... `);
    try {
      await waitForState(api, flags.app, machine.id, "started", flags.waitTimeout, machine.instance_id);
      progress("started\n");
    } catch (err) {
      // A --rm machine whose command was quick may have ended, and be going, before the wait saw it run.
      const now = flags.rm ? await api.getMachine(flags.app, machine.id).catch(() => undefined) : undefined;
      if (!now || !["stopped", "destroying", "destroyed"].includes(now.state ?? "")) {
        progress("failed\n");
        throw withHint(err, logsHint(flags.app, machine.id));
      }
      progress(`it ran and ended (${now.state})\n`);
    }
  }
  if (body.config.services) progress(`URL: ${appUrl(flags.app, (await ctx.config()).proxyUrl)}\n`);
  if (flags.json) printJson(ctx, flags.detach ? machine : await api.getMachine(flags.app, machine.id));
}

/** `hangar machine run|list|status|start|stop|restart|destroy|clone|update|exec`. */
export function registerMachine(program: Command, ctx: Context): void {
  const machine = program.command("machine").alias("machines").description("manage machines");
  // -a defaults to the config file's app, for every subcommand (exec's too).
  machine.hook("preAction", appFromConfigHook(ctx.cwd));

  machine
    .command("run <image>")
    .description(
      "create and start a machine from an image reference, `dir:<path>`, or a folder (`.`, `./app`)",
    )
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("-p, --port <port>", "port the app listens on inside the machine, served on 80 and 443", port)
    .option("-r, --region <region>", "region to run in")
    .option("-e, --env <KEY=VALUE>", "environment variable (repeatable)", envPair)
    .option("-n, --name <name>", "machine name")
    .option("--cpus <n>", "number of CPUs", positiveInt)
    .option("--memory <mb>", "memory in MB", positiveInt)
    .option("--cmd <command>", "command to run instead of the image's (split like a shell would)")
    .option("--restart <policy>", "restart policy: no, always or on-failure", restartPolicy)
    .option(
      "--rm",
      "destroy the machine once its process has ended (restart policy no unless --restart is given)",
    )
    .option("-d, --detach", "return once created, without waiting for the machine to start")
    .addOption(waitTimeoutOption(300, "5m", "it to start"))
    .option("--json", "print the machine's JSON")
    .action((image: string, flags: RunFlags) => run(ctx, image, flags));

  machine
    .command("list")
    .alias("ls")
    .description("list an app's machines")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("-s, --state <state>", "only machines in this state")
    .option("-r, --region <region>", "only machines in this region")
    .option("--json", "print the API's JSON")
    .action(async (flags: { app: string; state?: string; region?: string; json?: boolean }) => {
      const api = await ctx.api();
      const all = await api.listMachines(flags.app, flags.region ? { region: flags.region } : {});
      // The API has no state filter.
      const machines = flags.state ? all.filter((m) => m.state === flags.state) : all;
      if (flags.json) return printJson(ctx, machines);
      if (machines.length === 0) return ctx.out(`No machines in app ${flags.app}\n`);
      ctx.out(machineTable(machines));
    });

  machine
    .command("status <id>")
    .description("show a machine's state, config and recent events")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("--json", "print the machine's JSON, with its events")
    .action(async (id: string, flags: { app: string; json?: boolean }) => {
      const api = await ctx.api();
      const [m, events] = await Promise.all([
        api.getMachine(flags.app, id),
        api.machineEvents(flags.app, id),
      ]);
      if (flags.json) return printJson(ctx, { ...m, events });
      ctx.out(machineDetails(m, events));
    });

  machine
    .command("start <id>")
    .description("start a stopped machine")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("--no-wait", "do not wait for it to be started")
    .addOption(waitTimeoutOption(60, "1m", "it to be started"))
    .action(async (id: string, flags: { app: string; wait: boolean; waitTimeout: number }) => {
      const api = await ctx.api();
      await api.startMachine(flags.app, id);
      if (!flags.wait) return ctx.out(`Machine ${id} starting\n`);
      ctx.out(`Machine ${id} starting... `);
      await waitAndReport({
        api,
        app: flags.app,
        id,
        state: "started",
        timeout: flags.waitTimeout,
        progress: ctx.out,
      });
    });

  machine
    .command("stop <id>")
    .description("stop a machine")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("--signal <signal>", "signal to stop it with, e.g. SIGTERM (default: its stop_config)")
    .option(
      "--timeout <duration>",
      "time before it is killed, e.g. 30s (default: its stop_config)",
      goDuration,
    )
    .option("--no-wait", "do not wait for it to be stopped")
    .addOption(waitTimeoutOption(60, "1m", "it to be stopped"))
    .action(
      async (
        id: string,
        flags: { app: string; signal?: string; timeout?: string; wait: boolean; waitTimeout: number },
      ) => {
        const api = await ctx.api();
        await api.stopMachine(flags.app, id, {
          ...(flags.signal ? { signal: flags.signal } : {}),
          ...(flags.timeout ? { timeout: flags.timeout } : {}),
        });
        if (!flags.wait) return ctx.out(`Machine ${id} stopping\n`);
        ctx.out(`Machine ${id} stopping... `);
        // The kill timeout may be longer than the default wait.
        const grace = flags.timeout ? Math.ceil(durationSeconds(flags.timeout)) + 10 : 0;
        const timeout = Math.max(flags.waitTimeout, grace);
        await waitAndReport({ api, app: flags.app, id, state: "stopped", timeout, progress: ctx.out });
      },
    );

  machine
    .command("restart <id>")
    .description("restart a machine")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("--timeout <duration>", "time to stop before it is killed", goDuration)
    .option("--no-wait", "do not wait for it to be started again")
    .addOption(waitTimeoutOption(60, "1m", "it to be started again"))
    .action(
      async (id: string, flags: { app: string; timeout?: string; wait: boolean; waitTimeout: number }) => {
        const api = await ctx.api();
        await api.restartMachine(flags.app, id, flags.timeout);
        if (!flags.wait) return ctx.out(`Machine ${id} restarting\n`);
        ctx.out(`Machine ${id} restarting... `);
        await waitAndReport({
          api,
          app: flags.app,
          id,
          state: "started",
          timeout: flags.waitTimeout,
          progress: ctx.out,
        });
      },
    );

  machine
    .command("destroy <id>")
    .alias("rm")
    .description("destroy a machine")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("-f, --force", "destroy it even if it is running")
    .action(async (id: string, flags: { app: string; force?: boolean }) => {
      const api = await ctx.api();
      await api.destroyMachine(flags.app, id, flags.force ?? false);
      ctx.out(`Machine ${id} destroyed\n`);
    });

  machine
    .command("clone <id>")
    .description("create a machine with another's config (a machine with a volume gets a new empty one)")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("-r, --region <region>", "region of the new machine (default: the source's)")
    .option("-n, --name <name>", "name of the new machine")
    .option("-d, --detach", "return once created, without waiting for the machine to start")
    .addOption(waitTimeoutOption(300, "5m", "it to start"))
    .option("--json", "print the new machine's JSON")
    .action((id: string, flags: CloneFlags) => clone(ctx, id, flags));

  machine
    .command("update <id>")
    .description("change a machine's VM size, memory or image; a running machine restarts with it")
    .option("-a, --app <name>", APP_OPTION_HELP)
    .option("--vm-size <size>", "VM size, e.g. shared-cpu-2x or performance-1x")
    .option("--memory <mb>", "memory in MB", positiveInt)
    .option("--image <ref>", "image reference, `dir:<path>`, or the path of a folder")
    .option("-y, --yes", "do not ask for confirmation")
    .addOption(waitTimeoutOption(300, "5m", "it to start again"))
    .option("--json", "print the updated machine's JSON")
    .action((id: string, flags: UpdateFlags) => update(ctx, id, flags));

  registerMachineExec(machine, ctx);
}

interface CloneFlags {
  app: string;
  region?: string;
  name?: string;
  detach?: boolean;
  waitTimeout: number;
  json?: boolean;
}

/** `hangar machine clone`: flyctl's clone, a new volume of the same name and size for a mounted one. */
async function clone(ctx: Context, id: string, flags: CloneFlags): Promise<void> {
  const api = await ctx.api();
  const progress = flags.json ? ctx.err : ctx.out;
  const source = await api.getMachine(flags.app, id);
  if (!source.config) throw new CliError(`machine ${id} has no config to clone`);
  const region = flags.region ?? source.region ?? "";
  progress(`Cloning machine ${source.id} into ${region ? `region ${region}` : "the default region"}\n`);
  const volumes = new NewVolumes(api, flags.app, progress, false);
  const m = await createLike(api, flags.app, source.config, region, volumes, flags.name);
  const where = `Machine ${m.id} created in region ${m.region ?? "?"}`;
  if (flags.detach) {
    progress(`${where}\n`);
  } else {
    progress(`${where}, waiting for it to start... `);
    await waitAndReport({
      api,
      app: flags.app,
      id: m.id,
      state: "started",
      timeout: flags.waitTimeout,
      instanceId: m.instance_id,
      progress,
    });
  }
  if (flags.json) printJson(ctx, flags.detach ? m : await api.getMachine(flags.app, m.id));
}

interface UpdateFlags {
  app: string;
  vmSize?: string;
  memory?: number;
  image?: string;
  yes?: boolean;
  waitTimeout: number;
  json?: boolean;
}

/** `hangar machine update`: the changes listed, confirmed unless --yes, then the machine replaced. */
async function update(ctx: Context, id: string, flags: UpdateFlags): Promise<void> {
  if (flags.vmSize === undefined && flags.memory === undefined && flags.image === undefined) {
    throw new CliError("nothing to update", "pass --vm-size, --memory or --image");
  }
  guestOfSize(flags.vmSize, flags.memory); // a bad size fails before any call
  let image: string | undefined;
  if (flags.image !== undefined) {
    try {
      image = resolveImage(flags.image, ctx.cwd);
    } catch (err) {
      throw new CliError(
        (err as Error).message,
        "give an image reference, `dir:<path>`, or the path of a folder",
      );
    }
  }
  const api = await ctx.api();
  const progress = flags.json ? ctx.err : ctx.out;
  const m = await api.getMachine(flags.app, id);
  const before = m.config ?? {};
  const guest = guestOfSize(flags.vmSize, flags.memory, (before.guest ?? {}) as Record<string, unknown>);
  const config: MachineConfig = { ...before, ...(image ? { image } : {}), guest };
  const changes = [
    ...(image && image !== before.image ? [`image: ${before.image ?? "(none)"} -> ${image}`] : []),
    ...(sizeName(guest) !== sizeName(before.guest)
      ? [`size: ${sizeName(before.guest)} -> ${sizeName(guest)}`]
      : []),
    ...(guest.memory_mb !== before.guest?.memory_mb
      ? [`memory: ${before.guest?.memory_mb ?? "?"} MB -> ${String(guest.memory_mb)} MB`]
      : []),
  ];
  if (changes.length === 0) {
    progress(`Machine ${id} has that config already: nothing to update\n`);
    if (flags.json) printJson(ctx, m);
    return;
  }
  progress(`Machine ${id} will change:\n${changes.map((c) => `  ${c}\n`).join("")}`);
  if (!flags.yes && !(await confirm(ctx, `Update machine ${id}?`, `not updating machine ${id}`))) {
    throw new CliError(`machine ${id} was not updated`);
  }
  progress(`Updating machine ${id}... `);
  try {
    await updateAndWait(api, flags.app, m, config, flags.waitTimeout, progress);
  } catch (err) {
    throw withHint(err, logsHint(flags.app, id));
  }
  if (flags.json) printJson(ctx, await api.getMachine(flags.app, id));
}

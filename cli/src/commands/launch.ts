import { stat } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import { AppNameSchema } from "@hangar/config";
import type { Command } from "commander";
import { ApiError } from "../api.js";
import { loadAppConfig } from "../app-config.js";
import { CliError } from "../cli-error.js";
import type { Context } from "../context.js";
import {
  appPort,
  defaultAppName,
  detectProject,
  edgeHangarToml,
  type FileOutcome,
  hangarToml,
  NODE_DOCKERIGNORE,
  nodeDockerfile,
  writeNew,
} from "../launch.js";
import { port } from "../options.js";
import { deploy } from "./deploy.js";

interface LaunchFlags {
  name?: string;
  region?: string;
  port?: number;
  org?: string;
  create: boolean;
  /** False with --no-deploy. */
  deploy: boolean;
  yes?: boolean;
  json?: boolean;
}

function describeOutcome(file: string, outcome: FileOutcome): string {
  if (outcome === "kept") return `${file} exists, kept it (pass --yes to overwrite)`;
  return `${outcome === "written" ? "Wrote" : "Overwrote"} ${file}`;
}

/** Creates the app, or accepts an existing one of the same name in the user's organization. */
async function createApp(
  ctx: Context,
  app: string,
  org: string | undefined,
  say: (text: string) => void,
): Promise<void> {
  const api = await ctx.api();
  try {
    const created = await api.createApp(app, org);
    say(`Created app ${app} in organization ${created?.organization?.slug ?? org}\n`);
    return;
  } catch (err) {
    if (!(err instanceof ApiError && err.httpStatus === 409)) throw err;
  }
  // Another org's app is a 404 to this token: taken all the same.
  const existing = await api.getApp(app).catch((err: unknown) => {
    if (err instanceof ApiError && err.httpStatus === 404) return undefined;
    throw err;
  });
  if (!existing || (org !== undefined && existing.organization?.slug !== org)) {
    throw new CliError(
      `app name ${app} is taken by another organization`,
      "pick another name with --name, and change `app` in hangar.toml",
    );
  }
  say(`App ${app} already exists in your organization ${existing.organization?.slug ?? org}: using it\n`);
}

async function launch(ctx: Context, dirArg: string, flags: LaunchFlags): Promise<void> {
  const dir = resolve(ctx.cwd, dirArg);
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new CliError(`${dir} is not a folder`);

  const project = await detectProject(dir);
  const existing = await loadAppConfig(dir);
  const internalPort = appPort(project, flags.port);
  const app = flags.name ?? existing?.config.app ?? defaultAppName(dir, project);
  if (!AppNameSchema.safeParse(app).success) {
    throw new CliError(
      `${app} is not a valid app name: use lowercase letters, digits and dashes (at most 63)`,
      "pass --name <app>",
    );
  }
  const region = flags.region ?? existing?.config.primary_region ?? "local";
  const overwrite = flags.yes ?? false;
  // With --json, stdout is the deploy's JSON alone.
  const say = flags.json ? ctx.err : ctx.out;

  if (project.kind === "dockerfile") {
    const exposed = project.exposedPort ? ` (EXPOSE ${project.exposedPort})` : "";
    say(`Found a Dockerfile${exposed}\n`);
  } else if (project.kind === "edge") {
    say(`Detected an edge app (${project.entry}): it runs in the proxies, with no image and no machines\n`);
  } else {
    say(`Detected a ${project.framework === "next" ? "Next.js" : "Node"} app\n`);
    const dockerfile = await writeNew(
      join(dir, "Dockerfile"),
      nodeDockerfile(project, internalPort),
      overwrite,
    );
    say(`${describeOutcome("Dockerfile", dockerfile)}\n`);
    const ignore = await writeNew(join(dir, ".dockerignore"), NODE_DOCKERIGNORE, overwrite);
    say(`${describeOutcome(".dockerignore", ignore)}\n`);
  }

  if (existing && basename(existing.file) === "fly.toml" && !overwrite) {
    say(`Using the existing fly.toml (pass --yes to write a hangar.toml instead)\n`);
  } else {
    const toml =
      project.kind === "edge"
        ? edgeHangarToml({ app, region, entry: project.entry })
        : hangarToml({ app, region, port: internalPort });
    const outcome = await writeNew(join(dir, "hangar.toml"), toml, overwrite);
    say(`${describeOutcome("hangar.toml", outcome)}\n`);
  }
  for (const warning of existing?.warnings ?? []) ctx.err(`Warning: ${warning}\n`);
  if (existing?.config.app && existing.config.app !== app && !overwrite) {
    ctx.err(
      `Warning: ${basename(existing.file)} names app ${existing.config.app}; \`hangar deploy\` uses it unless given -a ${app}\n`,
    );
  }

  if (flags.create) await createApp(ctx, app, flags.org, say);
  const where = relative(ctx.cwd, dir);
  if (flags.create && flags.deploy) {
    // As flyctl's launch: the app is deployed at once, as `hangar deploy` would, and this first
    // deploy runs [deploy] seed_command after the release_command.
    say(`Deploying ${app}\n`);
    await deploy(ctx, dirArg, { app, cache: true, seed: true, ...(flags.json ? { json: true } : {}) });
    return;
  }
  say(`Deploy it with \`hangar deploy${where === "" ? "" : ` ${where}`}\`\n`);
}

/** `hangar launch [dir]`: detects the app, writes Dockerfile, .dockerignore and hangar.toml, creates the app and deploys it. */
export function registerLaunch(program: Command, ctx: Context): void {
  program
    .command("launch [dir]")
    .description(
      "set up an app from a folder: Dockerfile (for Node apps), hangar.toml, the app itself, and its first deploy",
    )
    .option("-n, --name <app>", "app name (default: the package or folder name)")
    .option("-r, --region <region>", "primary region", undefined)
    .option(
      "-p, --port <port>",
      "port the app listens on (default: the Dockerfile's EXPOSE, else 8080)",
      port,
    )
    .option("-o, --org <slug>", "organization (default: the token's)")
    .option("--no-create", "only write the files, do not create (nor deploy) the app")
    .option("--no-deploy", "create the app but do not deploy it (`hangar deploy` does later)")
    .option("--json", "print the deploy's outcome as one JSON object (progress goes to stderr)")
    .option("-y, --yes", "overwrite files that exist")
    .action((dir: string | undefined, flags: LaunchFlags) => launch(ctx, dir ?? ".", flags));
}

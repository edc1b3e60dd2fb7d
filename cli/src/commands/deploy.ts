import { access, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type AppConfig, durationToMs } from "@hangar/config";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { ApiClient } from "../api.js";
import { type LoadedAppConfig, loadAppConfig, resolveAppName } from "../app-config.js";
import { contextPath, formatBytes, packContext } from "../build-context.js";
import { followBuild, formatDuration, formatFailure } from "../build-log.js";
import { type BuildSecretSpec, parseBuildSecret, readBuildSecrets } from "../build-secrets.js";
import { CliError } from "../cli-error.js";
import { appUrl } from "../config.js";
import { type Context, printJson } from "../context.js";
import { deployEdge } from "../edge-deploy.js";
import { followRelease } from "../follow-release.js";
import { withLocalFiles } from "../local-files.js";
import { seconds } from "../options.js";
import { deployStagedSecrets } from "../staged-secrets.js";
import { type CommandTrace, startCommandTrace } from "../trace.js";
import type { Release } from "../types.js";
import { readCounted, UploadProgress } from "../upload.js";

/** The options of `hangar deploy`, as commander gives them (`cache` is true unless --no-cache). */
export interface DeployFlags {
  app?: string;
  config?: string;
  cache: boolean;
  buildArg?: string[];
  /** `--build-secret`s, read here and sent sealed with the build. */
  buildSecret?: BuildSecretSpec[];
  message?: string;
  /** A prebuilt image to deploy without a build (--image). */
  image?: string;
  waitTimeout?: number;
  /** rolling (default), immediate, canary or bluegreen; wins over [deploy] strategy. */
  strategy?: string;
  /** Rolling: machines replaced at once, a count or a fraction; wins over [deploy] max_unavailable. */
  maxUnavailable?: string;
  /** Print the release and return; the platform carries the deploy out. */
  detach?: boolean;
  /** Set by `hangar launch` for the app's first deploy: [deploy] seed_command runs, as `fly launch` runs it. */
  seed?: boolean;
  json?: boolean;
}

/** The strategies the platform's release orchestrator carries out (flyctl's). */
export const STRATEGIES = ["rolling", "immediate", "canary", "bluegreen"] as const;

function buildArg(value: string, previous: string[] = []): string[] {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(value)) throw new InvalidArgumentError("expected KEY=VALUE");
  return [...previous, value];
}

/** [build.args] then --build-arg, a later value of the same key winning. */
function buildArgs(config: AppConfig, flags: string[]): string[] {
  const args = new Map(Object.entries(config.build?.args ?? {}));
  for (const pair of flags) {
    const eq = pair.indexOf("=");
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return [...args].map(([key, value]) => `${key}=${value}`);
}

/** What the image build produced. */
interface Built {
  image: string;
  buildId?: string;
  cachedSteps?: number;
}

/** Packs and uploads the context, follows the build, and resolves to the image it produced. */
async function build(
  ctx: Context,
  api: ApiClient,
  app: string,
  dir: string,
  config: AppConfig,
  flags: DeployFlags,
  progress: (text: string) => void,
): Promise<Built> {
  const dockerfile = contextPath(config.build?.dockerfile ?? "Dockerfile", "Dockerfile");
  try {
    await access(join(dir, dockerfile));
  } catch {
    throw new CliError(
      `no Dockerfile at ${join(dir, dockerfile)}`,
      "run `hangar launch` to write one, set [build] dockerfile, or deploy an image with [build] image",
    );
  }
  // Read before anything is uploaded, so a missing file or variable fails at once.
  const secrets = await readBuildSecrets(flags.buildSecret ?? []);
  const tmp = await mkdtemp(join(tmpdir(), "hangar-context-"));
  try {
    const packed = await packContext(dir, join(tmp, "context.tar"), {
      dockerfile,
      ...(config.build?.ignorefile ? { ignoreFile: config.build.ignorefile } : {}),
    });
    ctx.err(
      `Packed the build context: ${packed.files} files, ${packed.dirs} folders, ${packed.symlinks} symlinks, ${formatBytes(packed.size)}\n`,
    );
    if (packed.skipped.length > 0) {
      ctx.err(`Warning: left out what is not a file, folder or symlink: ${packed.skipped.join(", ")}\n`);
    }
    const upload = new UploadProgress(packed.size, ctx.err, ctx.errIsTTY);
    const created = await api.createBuild(app, {
      context: readCounted(packed.file, upload),
      dockerfile,
      ...(config.build?.["build-target"] ? { target: config.build["build-target"] } : {}),
      noCache: !flags.cache,
      buildArgs: buildArgs(config, flags.buildArg ?? []),
      ...(Object.keys(secrets).length > 0 ? { secrets } : {}),
    });
    upload.done();
    progress(`Building ${created.id}\n`);
    // Ctrl-C cancels the build it started (which would otherwise run on unseen), then the follow
    // sees it end as cancelled; a second Ctrl-C ends the CLI at once.
    const cancel = () => {
      progress(`Cancelling build ${created.id} (Ctrl-C again to stop waiting)\n`);
      void api.cancelBuild(app, created.id).catch(() => undefined);
    };
    process.once("SIGINT", cancel);
    let outcome: Awaited<ReturnType<typeof followBuild>>;
    try {
      outcome = await followBuild(api, app, created.id, progress);
    } finally {
      process.off("SIGINT", cancel);
    }
    if (outcome.status === "failed") {
      progress(formatFailure(outcome.failure));
      const where = outcome.failure.line !== undefined ? ` at Dockerfile line ${outcome.failure.line}` : "";
      throw new CliError(
        `build ${created.id} failed${where}: ${outcome.failure.message}`,
        "fix the Dockerfile or the app and deploy again; nothing was released",
      );
    }
    const took = outcome.durationMs !== undefined ? ` in ${formatDuration(outcome.durationMs)}` : "";
    progress(
      `Built ${outcome.imageRef}${took} (${outcome.cachedSteps} of ${outcome.totalSteps} steps cached)\n`,
    );
    return { image: outcome.imageRef, buildId: created.id, cachedSteps: outcome.cachedSteps };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Notes for config this deploy carries out otherwise than asked. */
function unsupported(config: AppConfig, flags: DeployFlags): string[] {
  const strategy = flags.strategy ?? config.deploy?.strategy;
  if ((config.mounts ?? []).length > 0 && strategy === "bluegreen")
    return [
      "strategy bluegreen: an app with [mounts] keeps its machines on their volumes, so they are updated in place a batch at a time (as rolling)",
    ];
  return [];
}

function keepsServing(previous: Release | undefined, hadMachines: boolean): string {
  if (previous) return `v${previous.version} keeps serving`;
  return hadMachines ? "the previous machines keep serving" : "nothing was serving before";
}

/** `hangar deploy <dirArg>`: what the command does, for `hangar launch` to deploy the same way. */
export async function deploy(ctx: Context, dirArg: string, flags: DeployFlags): Promise<void> {
  const dir = resolve(ctx.cwd, dirArg);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new CliError(`${dir} is not a folder`);
  const loaded: LoadedAppConfig | undefined = await loadAppConfig(dir, flags.config, ctx.cwd);
  for (const warning of loaded?.warnings ?? []) ctx.err(`Warning: ${warning}\n`);
  const app = resolveAppName(flags.app, loaded);
  if (!loaded) ctx.err("Warning: no hangar.toml or fly.toml: deploying with defaults (no HTTP service)\n");
  // [[files]] local_path files are read here, before anything is built or changed, into the config
  // the release records (see ReleasedAppFile).
  const config: AppConfig = loaded ? await withLocalFiles(loaded.config, loaded.file) : {};
  // An edge app's code is bundled from this folder; an image is for machines, which it has none of.
  // ([build] image in its config gets the warning every [build] key of an edge app gets.)
  if (config.edge && flags.image !== undefined) {
    throw new CliError(
      `${app} is an edge app ([edge] in ${loaded?.file ?? "its config"}): its code is bundled from ${dir} and runs in the proxies, so there is nothing to run the image ${flags.image} on`,
      "deploy without --image, or take [edge] out of the config to run the image on machines",
    );
  }
  for (const note of unsupported(config, flags)) ctx.err(`Warning: ${note}\n`);
  const progress = flags.json ? ctx.err : ctx.out;

  const api = await ctx.api();
  // One trace for the whole deploy: every API call carries it, and the services' spans join it.
  const trace = await startCommandTrace("hangar deploy");
  api.traceparent = trace.traceparent;
  let failure: unknown;
  try {
    await deployTraced(ctx, api, { app, dir, config, flags, progress, trace });
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    api.traceparent = undefined;
    await trace.end(failure);
  }
}

interface DeployRun {
  app: string;
  dir: string;
  config: AppConfig;
  flags: DeployFlags;
  progress: (text: string) => void;
  trace: CommandTrace;
}

async function deployTraced(ctx: Context, api: ApiClient, run: DeployRun): Promise<void> {
  const { app, dir, config, flags, progress, trace } = run;
  progress(`Trace ${trace.traceId}\n`);
  await api.getApp(app);
  // An edge app ([edge]) has no image and no machines: its code is bundled here and runs in the proxies.
  if (config.edge) {
    const edge = config.edge;
    return deployEdge(ctx, api, {
      app,
      dir,
      config: { ...config, edge },
      progress,
      trace,
      ...(flags.message ? { message: flags.message } : {}),
      ...(flags.detach ? { detach: true } : {}),
      ...(flags.json ? { json: true } : {}),
    });
  }
  // A prebuilt image (--image, else [build] image) is deployed as it is: its hosts pull it.
  const prebuilt = flags.image ?? config.build?.image;
  if (prebuilt) progress(`Deploying the image ${prebuilt} (no build)\n`);
  const built: Built = prebuilt
    ? { image: prebuilt }
    : await trace.phase("build", () => build(ctx, api, app, dir, config, flags, progress));

  // Staged secrets (`hangar secrets set --stage`) go out with this deploy: its machines start with them.
  await deployStagedSecrets(api, app, progress);

  const releases = await api.listReleases(app);
  const previous = releases.find((r) => r.status === "succeeded");
  return deployByPlatform(ctx, api, run, built, previous);
}

/** How long each new machine has (--wait-timeout, else [deploy] wait_timeout), in ms; undefined: the platform's default. */
function waitTimeoutOf(config: AppConfig, flags: DeployFlags): number | undefined {
  if (flags.waitTimeout !== undefined) return flags.waitTimeout * 1000;
  const configured = config.deploy?.wait_timeout;
  return configured !== undefined ? durationToMs(configured) : undefined;
}

/**
 * Records a release the platform carries out (its release orchestrator, under the deploy's trace) and
 * follows it to its end, unless --detach. A client that stops half-way leaves a deploy that the
 * platform finishes or rolls back.
 */
async function deployByPlatform(
  ctx: Context,
  api: ApiClient,
  run: DeployRun,
  built: Built,
  previous: Release | undefined,
): Promise<void> {
  const { app, config, flags, progress, trace } = run;
  const strategy = flags.strategy ?? config.deploy?.strategy ?? "rolling";
  const maxUnavailable = flags.maxUnavailable ?? config.deploy?.max_unavailable;
  const waitMs = waitTimeoutOf(config, flags);
  // An app with [mounts]: the platform puts new machines on unattached volumes or new ones; what it
  // created is told from the app's volumes of the mounts' names before and after.
  const mounts = (config.mounts ?? []).length > 0;
  const volumesBefore = mounts ? new Set((await api.listVolumes(app)).map((v) => v.id)) : undefined;
  const release = await trace.phase("release", () =>
    api.createRelease(app, {
      image: built.image,
      ...(built.buildId ? { build_id: built.buildId } : {}),
      config,
      strategy,
      deploy: true,
      ...(maxUnavailable !== undefined ? { max_unavailable: String(maxUnavailable) } : {}),
      ...(waitMs !== undefined ? { wait_timeout: waitMs / 1000 } : {}),
      ...(flags.message ? { description: flags.message } : {}),
      ...(flags.seed ? { seed: true } : {}),
    }),
  );
  progress(`Release v${release.version} created: the platform deploys it (${strategy})\n`);
  const summary = (r: Release) => ({
    app,
    release: r.version,
    status: r.status,
    strategy,
    reason: r.reason ?? null,
    rolled_back_to: r.rolled_back_to ?? null,
    image: built.image,
    build_id: built.buildId ?? null,
    machines: r.machine_ids ?? [],
    trace_id: trace.traceId,
  });
  if (flags.detach) {
    if (flags.json) return printJson(ctx, summary(release));
    ctx.out(`Follow it with \`hangar releases -a ${app}\`\n`);
    return;
  }
  const ended = await trace.phase("replace machines", () =>
    followRelease(api, app, release.version, progress),
  );
  if (ended.status === "failed") {
    if (flags.json) printJson(ctx, summary(ended));
    const back = ended.rolled_back_to
      ? `v${ended.rolled_back_to} keeps serving (the platform returned the app to it)`
      : keepsServing(previous, (await api.listMachines(app)).length > 0);
    throw new CliError(
      `release v${ended.version} failed: ${ended.reason ?? "unknown"}; ${back}`,
      `see what the app printed with \`hangar logs -a ${app}\``,
    );
  }
  const hasHttp = config.http_service !== undefined || (config.services ?? []).length > 0;
  const url = hasHttp ? appUrl(app, (await ctx.config()).proxyUrl) : undefined;
  const names = new Set((config.mounts ?? []).map((m) => m.source));
  const created = volumesBefore
    ? (await api.listVolumes(app)).filter(
        (v) => !volumesBefore.has(v.id) && names.has(v.name) && v.state !== "destroyed",
      )
    : [];
  for (const v of created)
    progress(`Created volume ${v.id} (${v.name}, ${v.size_gb}GB) in region ${v.region}\n`);
  if (flags.json)
    return printJson(ctx, {
      ...summary(ended),
      ...(volumesBefore ? { volumes_created: created.map((v) => v.id) } : {}),
      url: url ?? null,
      cached_steps: built.cachedSteps ?? null,
    });
  const count = ended.machine_ids?.length === 1 ? "1 machine" : `${ended.machine_ids?.length ?? 0} machines`;
  ctx.out(`Release v${ended.version} is live on ${count}\n`);
  if (url) ctx.out(`URL: ${url}\n`);
}

function strategyArg(value: string): string {
  if (!(STRATEGIES as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${STRATEGIES.join(", ")}`);
  return value;
}

function maxUnavailableArg(value: string): string {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (!Number.isInteger(n) && n > 1))
    throw new InvalidArgumentError("expected a count (2) or a fraction of each group (0.33)");
  return value;
}

/** `hangar deploy [dir]`: builds the image, records a release and replaces the app's machines. */
export function registerDeploy(program: Command, ctx: Context): void {
  program
    .command("deploy [dir]")
    .description("build the app in a folder (default: .) and replace its machines with the new release")
    .option("-a, --app <name>", "app (default: `app` in the config file)")
    .option("-c, --config <file>", "app config file (default: hangar.toml, else fly.toml, in the folder)")
    .option("--no-cache", "build every step again, ignoring the layer cache")
    .option("--build-arg <KEY=VALUE>", "build argument (repeatable; wins over [build.args])", buildArg)
    .option(
      "--build-secret <id=ID,src=FILE|id=ID,env=VAR>",
      "secret for RUN --mount=type=secret,id=ID, read here and never stored in the image (repeatable)",
      parseBuildSecret,
    )
    .option("-m, --message <text>", "description of the release")
    .option(
      "--image <ref>",
      "deploy this prebuilt image (from any registry) without a build; wins over [build] image",
    )
    .addOption(
      new Option(
        "--wait-timeout <duration>",
        "how long each new machine has to start and pass its checks (default: [deploy] wait_timeout, else 5m)",
      ).argParser(seconds),
    )
    .addOption(
      new Option(
        "--strategy <name>",
        "rolling (default), immediate, canary or bluegreen; wins over [deploy] strategy",
      ).argParser(strategyArg),
    )
    .addOption(
      new Option(
        "--max-unavailable <n>",
        "rolling: machines replaced at once, a count or a fraction of each group (default 0.33)",
      ).argParser(maxUnavailableArg),
    )
    .option("--detach", "return once the release is recorded; the platform carries the deploy out")
    .option("--json", "print the outcome as one JSON object")
    .action((dir: string | undefined, flags: DeployFlags) => deploy(ctx, dir ?? ".", flags));
}

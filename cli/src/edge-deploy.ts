import type { AppConfig } from "@hangar/config";
import type { ApiClient } from "./api.js";
import { formatBytes } from "./build-context.js";
import { CliError } from "./cli-error.js";
import { appUrl } from "./config.js";
import { type Context, printJson } from "./context.js";
import { followRelease } from "./follow-release.js";
import { deployStagedSecrets } from "./staged-secrets.js";
import type { CommandTrace } from "./trace.js";
import type { Release } from "./types.js";

/** What `hangar deploy` of an edge app needs: the app, its folder and config, and how to report. */
export interface EdgeDeploy {
  app: string;
  dir: string;
  /** The app config, with its [edge] section. */
  config: AppConfig & { edge: NonNullable<AppConfig["edge"]> };
  message?: string;
  detach?: boolean;
  json?: boolean;
  progress: (text: string) => void;
  trace: CommandTrace;
}

/**
 * `hangar deploy` of an edge app ([edge]): bundles its code here (esbuild, libs/edge's bundleEdgeApp),
 * uploads the bundle (stored by digest), and records a release the platform carries out; an edge
 * release has no machines, so it ends at once and every proxy runs it within seconds. Follows it
 * to its end unless `detach`.
 */
export async function deployEdge(ctx: Context, api: ApiClient, run: EdgeDeploy): Promise<void> {
  const { app, dir, config, progress, trace } = run;
  // Loaded only here: the runtime beside the bundler is a native addon an image deploy need not load.
  const { bundleEdgeApp } = await import("@hangar/edge");
  const built = await trace.phase("bundle", async () => {
    try {
      return await bundleEdgeApp(dir, config.edge.entry ? { entry: config.edge.entry } : {});
    } catch (err) {
      throw new CliError(`the edge app in ${dir} did not bundle:\n${(err as Error).message}`);
    }
  });
  for (const warning of built.warnings) ctx.err(`Warning: ${warning}\n`);
  const { bundle } = built;
  progress(`Bundled ${built.entry}: ${formatBytes(Buffer.byteLength(bundle.code))}, ${bundle.digest}\n`);
  const stored = await trace.phase("upload", () => api.uploadEdgeBundle(app, bundle.code, bundle.digest));
  // Staged secrets go out with this deploy, as an image deploy's: the code gets them as `env`.
  await deployStagedSecrets(api, app, progress);
  const release = await trace.phase("release", () =>
    api.createRelease(app, {
      edge_bundle: stored.digest,
      config,
      deploy: true,
      ...(run.message ? { description: run.message } : {}),
    }),
  );
  progress(`Release v${release.version} created: the proxies run ${stored.digest}\n`);
  const url = appUrl(app, (await ctx.config()).proxyUrl);
  const summary = (r: Release) => ({
    app,
    release: r.version,
    status: r.status,
    reason: r.reason ?? null,
    bundle: stored.digest,
    size: stored.size,
    cpu_ms: r.edge?.cpu_ms ?? config.edge.cpu_ms,
    memory_mb: r.edge?.memory_mb ?? config.edge.memory_mb,
    url,
    trace_id: trace.traceId,
  });
  if (run.detach) {
    if (run.json) return printJson(ctx, summary(release));
    ctx.out(`Follow it with \`hangar releases -a ${app}\`\n`);
    return;
  }
  const ended = await trace.phase("release to the edge", () =>
    followRelease(api, app, release.version, progress),
  );
  if (run.json) printJson(ctx, summary(ended));
  if (ended.status === "failed")
    throw new CliError(`release v${ended.version} failed: ${ended.reason ?? "unknown"}`);
  if (run.json) return;
  ctx.out(`Release v${ended.version} is live on the edge: ${stored.digest}\n`);
  ctx.out(`URL: ${url}\n`);
}

/**
 * What `hangar edge test` and `hangar edge dev` share: an edge app's folder read (hangar.toml's app,
 * [edge] and [env]), bundled, and loaded into a runtime of this process.
 */
import { stat } from "node:fs/promises";
import { basename, resolve } from "node:path";
import {
  assertIsolateFlags,
  bundleEdgeApp,
  EDGE_DEFAULT_LIMITS,
  type EdgeBundle,
  type EdgeLimits,
  type EdgeLogLine,
  EdgeRuntime,
  httpFetch,
  MemoryEdgeHost,
} from "@hangar/edge";
import { loadAppConfig } from "./app-config.js";
import { CliError } from "./cli-error.js";

/** An edge app as its folder gives it. */
export interface EdgeAppDir {
  dir: string;
  app: string;
  entry?: string;
  limits: EdgeLimits;
  /** [env] of the config file: what the app sees as `env` before any test or secret adds to it. */
  vars: Record<string, string>;
}

/** Reads the app's config in `dir`, when there is one (the app is named after the folder otherwise). */
export async function readEdgeApp(dir: string): Promise<EdgeAppDir> {
  const abs = resolve(dir);
  const st = await stat(abs).catch(() => undefined);
  if (!st?.isDirectory())
    throw new CliError(
      `${abs} is ${st ? "not a folder" : "not there"}: give the edge app's folder (default: this one)`,
    );
  const loaded = await loadAppConfig(abs);
  const config = loaded?.config;
  const edge = config?.edge;
  return {
    dir: abs,
    app: config?.app ?? basename(abs),
    ...(edge?.entry ? { entry: edge.entry } : {}),
    limits: {
      ...EDGE_DEFAULT_LIMITS,
      ...(edge ? { cpuMs: edge.cpu_ms, memoryMb: edge.memory_mb } : {}),
    },
    vars: { ...(config?.env ?? {}) },
  };
}

/** Bundles the app as `hangar deploy` does; a build error becomes a CliError with esbuild's message. */
export async function bundleApp(app: EdgeAppDir): Promise<{ bundle: EdgeBundle; warnings: string[] }> {
  try {
    const out = await bundleEdgeApp(app.dir, app.entry ? { entry: app.entry } : {});
    return { bundle: out.bundle, warnings: out.warnings.map(String) };
  } catch (err) {
    throw new CliError(`${app.app}: the bundle did not build:\n${(err as Error).message}`);
  }
}

/** A runtime of this process for one app, fetching straight to the network; `onLog` gets its console lines. */
export function startRuntime(onLog: (line: EdgeLogLine) => void): EdgeRuntime {
  try {
    assertIsolateFlags();
  } catch (err) {
    throw new CliError(
      (err as Error).message,
      "cli/bin/hangar starts Node so; from a bundle, run node --no-node-snapshot",
    );
  }
  return new EdgeRuntime(new MemoryEdgeHost(httpFetch, onLog));
}

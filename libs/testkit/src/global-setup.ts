import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { startNatsServer } from "./nats-server.js";
import { startPostgres } from "./postgres.js";
import type {} from "./vitest-context.js";

/** Vitest globalSetup: one nats-server and one Postgres for the whole run, handed out via `inject`. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runFrom = await buildForRun();
  // nats-server is up in tens of milliseconds, so starting the two in sequence costs nothing.
  const nats = await startNatsServer();
  const postgres = await startPostgres().catch(async (error: unknown) => {
    await nats.stop();
    throw error;
  });
  project.provide("natsUrl", nats.url);
  project.provide("postgresUrl", postgres.url);
  // Every builder and host agent the run starts (test files inherit this process's environment, and
  // their services theirs) unpacks each layer once into one folder: a base image of 250 MB is
  // unpacked once per run, not once per platform and host. A folder the caller set is left as it is.
  const layersDir =
    process.env.HANGAR_LAYERS_DIR === undefined
      ? await mkdtemp(join(tmpdir(), "hangar-test-layers-"))
      : undefined;
  if (layersDir) process.env.HANGAR_LAYERS_DIR = layersDir;
  return async () => {
    await Promise.all([nats.stop(), postgres.stop()]);
    if (runFrom) delete process.env.HANGAR_RUN_FROM;
    if (layersDir) {
      delete process.env.HANGAR_LAYERS_DIR;
      await rm(layersDir, { recursive: true, force: true });
    }
  };
}

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));

/**
 * The platforms and CLIs the tests start run from compiled JavaScript (HANGAR_RUN_FROM=dist, see
 * scripts/platform.ts serviceArgv): `tsc --build` brings every package's dist up to date with its
 * sources first (bootstrap has built it, so in a fresh run this only checks, in seconds), then
 * scripts/bundle.ts bundles each service's and the CLI's dist into one file (seconds). A run of
 * unit tests only starts none, and a HANGAR_RUN_FROM the caller set (source) is left as it is.
 * Returns whether it set the variable.
 */
async function buildForRun(): Promise<boolean> {
  if (process.env.HANGAR_RUN_FROM !== undefined || process.env.HANGAR_TEST_LAYER === "unit") return false;
  const tsc = createRequire(join(repoRoot, "package.json")).resolve("typescript/bin/tsc");
  try {
    await promisify(execFile)(process.execPath, [tsc, "--build"], { cwd: repoRoot, maxBuffer: 64 << 20 });
  } catch (error) {
    // Sources that do not compile yet (a change in progress; CI's tsc fails on them anyway) still
    // run through tsx: the tests see the sources either way.
    const out = (error as { stdout?: string }).stdout || String(error);
    console.warn(`[global-setup] tsc --build failed; services and the CLI run from their sources:\n${out}`);
    return false;
  }
  // A bundle that fails to build is an error of the run, not a reason to test something else.
  await promisify(execFile)(
    process.execPath,
    ["--conditions=source", "--import", "tsx", join(repoRoot, "scripts", "bundle.ts")],
    { cwd: repoRoot, maxBuffer: 64 << 20 },
  );
  process.env.HANGAR_RUN_FROM = "dist";
  return true;
}

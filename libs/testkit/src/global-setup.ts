import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startNatsServer } from "./nats-server.js";
import { startPostgres } from "./postgres.js";
import type {} from "./vitest-context.js";

/** Vitest globalSetup: one nats-server and one Postgres for the whole run, handed out via `inject`. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
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
    if (layersDir) {
      delete process.env.HANGAR_LAYERS_DIR;
      await rm(layersDir, { recursive: true, force: true });
    }
  };
}

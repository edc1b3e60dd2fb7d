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
  return async () => {
    await Promise.all([nats.stop(), postgres.stop()]);
  };
}

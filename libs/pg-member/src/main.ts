// The member agent's entrypoint (the member image runs the bundle of this file with node).
import { MemberAgent } from "./agent.js";
import { archiveWal, MemberBackups } from "./backup.js";
import { controlServer } from "./control.js";
import { Router } from "./router.js";
import { log } from "./server.js";
import { memberSettings, SettingsError } from "./settings.js";

async function main(): Promise<void> {
  let settings: ReturnType<typeof memberSettings>;
  try {
    settings = memberSettings();
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    log(`member agent settings: ${error.message}`);
    process.exit(2);
  }
  const router = new Router(settings.pgPort);
  const agent = new MemberAgent(settings, (target) => router.setTarget(target));
  const backups = new MemberBackups(settings, agent);
  await backups.prepare();
  const api = controlServer(agent, settings.agentToken, backups);
  await router.listen(settings.listen, settings.routerPort);
  await new Promise<void>((resolve, reject) => {
    api.once("error", reject);
    api.listen({ host: settings.listen, port: settings.controlPort, ipv6Only: false }, resolve);
  });
  log("member agent listening", {
    member_id: settings.memberId,
    router: settings.routerPort,
    control: settings.controlPort,
    postgres: settings.pgPort,
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("stopping", { signal });
    api.close();
    api.closeAllConnections();
    Promise.all([router.close(), agent.stop()]).then(
      () => process.exit(0),
      (error: unknown) => {
        log("stop failed", { error: (error as Error).message });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  // Postgres is started after the API listens: the manager sees a starting member, not a dead one.
  await agent
    .start()
    .catch((error: unknown) => log("postgres did not start", { error: (error as Error).message }));
}

// `archive-wal %p %f`: postgres' archive_command (backup.ts), not the agent.
const run =
  process.argv[2] === "archive-wal"
    ? () => archiveWal(process.argv[3], process.argv[4]).then((code) => process.exit(code))
    : main;
run().catch((error: unknown) => {
  log("member agent failed", { error: (error as Error).stack ?? String(error) });
  process.exit(1);
});

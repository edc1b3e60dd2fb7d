import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildsStream } from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { connectNats, env, envNumber, onShutdown, startOpsServer } from "@hangar/service";
import { createLogger, startTelemetry } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { Builder } from "./builder.js";
import { openBuildDeps } from "./platform.js";
import { BuilderPreflightError, checkBuilderHost } from "./preflight.js";

const telemetry = startTelemetry({ serviceName: "hangar-builder" });
const logger = createLogger("builder");
try {
  await checkBuilderHost();
} catch (err) {
  if (!(err instanceof BuilderPreflightError)) throw err;
  logger.fatal(err.message);
  process.stderr.write(`hangar-builder cannot start: ${err.message}\n`);
  process.exit(1);
}
const dataDir = env("HANGAR_BUILDER_DIR", join(tmpdir(), "hangar-builder"));
const nc = await connectNats(env("HANGAR_NATS_URL", "nats://127.0.0.1:4222"), "hangar-builder");
const store = await EventStore.connect(nc);
await ensureStream(store.jsm, buildsStream);
const { deps, contexts } = await openBuildDeps(nc, dataDir);
const registry = new Registry();
const builder = await Builder.start({ nc, store, logger, deps, contexts, dataDir, registry });
const ops = await startOpsServer({
  port: envNumber("HANGAR_BUILDER_OPS_PORT", 4284),
  service: "builder",
  registry,
  health: () => builder.health(),
});
logger.info({ ops_port: ops.port, builder_id: builder.builderId, data_dir: dataDir }, "builder ready");

onShutdown(logger, async () => {
  await builder.stop();
  await ops.close();
  store.close();
  await nc.drain();
  await telemetry.shutdown();
});

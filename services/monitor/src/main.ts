import { machinesStream } from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { connectNats, env, envNumber, onShutdown, startOpsServer } from "@hangar/service";
import { createLogger, startTelemetry } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { Monitor } from "./monitor.js";

const telemetry = startTelemetry({ serviceName: "hangar-monitor" });
const logger = createLogger("monitor");
const nc = await connectNats(env("HANGAR_NATS_URL", "nats://127.0.0.1:4222"), "hangar-monitor");
const store = await EventStore.connect(nc);
await ensureStream(store.jsm, machinesStream);
const registry = new Registry();
const monitor = await Monitor.start(store, registry);
const ops = await startOpsServer({
  port: envNumber("HANGAR_MONITOR_PORT", 4290),
  service: "monitor",
  registry,
  health: () => monitor.health(),
});
logger.info({ port: ops.port }, "monitor ready: metrics at /metrics");

onShutdown(logger, async () => {
  await monitor.stop();
  await ops.close();
  store.close();
  await nc.drain();
  await telemetry.shutdown();
});

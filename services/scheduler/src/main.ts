import { appsStream, machinesStream, scalingStream } from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { connectNats, env, envNumber, onShutdown, startOpsServer } from "@hangar/service";
import { createLogger, startTelemetry } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { DEFAULT_PANIC_WINDOW_S, DEFAULT_STABLE_WINDOW_S } from "./autoscaler.js";
import { DEFAULT_DRAIN_TIMEOUT_S } from "./executor.js";
import { startScheduler } from "./scheduler.js";

const telemetry = startTelemetry({ serviceName: "hangar-scheduler" });
const logger = createLogger("scheduler");
const nc = await connectNats(env("HANGAR_NATS_URL", "nats://127.0.0.1:4222"), "hangar-scheduler");
const store = await EventStore.connect(nc);
for (const s of [appsStream, machinesStream, scalingStream]) await ensureStream(store.jsm, s);
const registry = new Registry();
const scheduler = await startScheduler({
  nc,
  store,
  logger,
  registry,
  panicWindowS: envNumber("HANGAR_SCALER_PANIC_WINDOW_S", DEFAULT_PANIC_WINDOW_S),
  stableWindowS: envNumber("HANGAR_SCALER_STABLE_WINDOW_S", DEFAULT_STABLE_WINDOW_S),
  drainTimeoutS: envNumber("HANGAR_SCALER_DRAIN_TIMEOUT_S", DEFAULT_DRAIN_TIMEOUT_S),
});
const ops = await startOpsServer({
  port: envNumber("HANGAR_SCHEDULER_OPS_PORT", 0),
  service: "scheduler",
  registry,
  health: () => scheduler.health(),
});
logger.info({ ops_port: ops.port }, "scheduler ready");

onShutdown(logger, async () => {
  await scheduler.stop();
  await ops.close();
  store.close();
  await nc.drain();
  await telemetry.shutdown();
});

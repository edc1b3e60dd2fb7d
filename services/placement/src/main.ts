import { hostsStream, machinesStream } from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { connectNats, env, envNumber, onShutdown, startOpsServer } from "@hangar/service";
import { createLogger, startTelemetry } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { Placement } from "./placement.js";

const telemetry = startTelemetry({ serviceName: "hangar-placement" });
const logger = createLogger("placement");
const nc = await connectNats(env("HANGAR_NATS_URL", "nats://127.0.0.1:4222"), "hangar-placement");
const store = await EventStore.connect(nc);
for (const s of [hostsStream, machinesStream]) await ensureStream(store.jsm, s);
const registry = new Registry();
const strategy = env("HANGAR_PLACEMENT_STRATEGY", "binpack");
if (strategy !== "binpack" && strategy !== "spread")
  throw new Error("HANGAR_PLACEMENT_STRATEGY must be binpack or spread");
const placement = await Placement.start({ nc, store, logger, registry, strategy });
const ops = await startOpsServer({
  port: envNumber("HANGAR_PLACEMENT_OPS_PORT", 0),
  service: "placement",
  registry,
  health: () => placement.health(),
});
logger.info({ ops_port: ops.port, strategy }, "placement ready");

onShutdown(logger, async () => {
  await placement.stop();
  await ops.close();
  store.close();
  await nc.drain();
  await telemetry.shutdown();
});

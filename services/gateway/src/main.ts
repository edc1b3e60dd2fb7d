import { appsStream, hostsStream, machinesStream } from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { connectNats, env, envNumber, onShutdown } from "@hangar/service";
import { createLogger, startTelemetry } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { createApi, startApiServer } from "./http/mod.js";
import { StreamBackend } from "./machines/backend.js";
import { Catalog } from "./machines/catalog.js";
import { MachineCommands } from "./machines/commands.js";

const telemetry = startTelemetry({ serviceName: "hangar-gateway" });
const logger = createLogger("gateway");
const nc = await connectNats(env("HANGAR_NATS_URL", "nats://127.0.0.1:4222"), "hangar-gateway");
const store = await EventStore.connect(nc);
for (const s of [appsStream, machinesStream, hostsStream]) await ensureStream(store.jsm, s);
const catalog = await Catalog.start(store);
const commands = new MachineCommands(nc, store, catalog, env("HANGAR_REGION", "local"));
const registry = new Registry();
registry.setDefaultLabels({ service: "gateway" });
const app = createApi({
  backend: new StreamBackend(catalog, commands),
  token: env("HANGAR_TOKEN"),
  logger,
  metrics: registry,
});
const server = await startApiServer(app, {
  port: envNumber("HANGAR_GATEWAY_PORT", 4280),
  hostname: env("HANGAR_GATEWAY_HOST", "0.0.0.0"),
});
logger.info({ url: server.url, apps: catalog.appNames().length }, "gateway ready");

onShutdown(logger, async () => {
  await server.close();
  await catalog.stop();
  store.close();
  await nc.drain();
  await telemetry.shutdown();
});

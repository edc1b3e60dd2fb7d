import { appsStream, machinesStream } from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { connectNats, env, envNumber, onShutdown, startOpsServer } from "@hangar/service";
import { createLogger, startTelemetry } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { createProxy, QUEUE_DEFAULTS } from "./engine/mod.js";
import { LoadPublisher, proxyIdFromEnv } from "./load.js";
import { StreamRouteTable } from "./routes/route-table.js";
import { CommandWaker } from "./wake.js";

const telemetry = startTelemetry({ serviceName: "hangar-proxy" });
const logger = createLogger("proxy");
const proxyId = proxyIdFromEnv();
const region = env("HANGAR_REGION", "local");
const nc = await connectNats(env("HANGAR_NATS_URL", "nats://127.0.0.1:4222"), "hangar-proxy");
const store = await EventStore.connect(nc);
for (const s of [appsStream, machinesStream]) await ensureStream(store.jsm, s);
const routes = await StreamRouteTable.start(store);
const registry = new Registry();
const domains = env("HANGAR_PROXY_DOMAINS", "localhost")
  .split(",")
  .map((d) => d.trim())
  .filter(Boolean);
const proxy = createProxy({
  routes,
  domains,
  region,
  logger,
  registry,
  waker: new CommandWaker(nc, { machineSeq: (app, id) => routes.machineSeq(app, id) }),
  queueMax: envNumber("HANGAR_PROXY_QUEUE_MAX", QUEUE_DEFAULTS.queueMax),
  queueTimeoutMs: envNumber("HANGAR_PROXY_QUEUE_TIMEOUT_MS", QUEUE_DEFAULTS.queueTimeoutMs),
  wakeTimeoutMs: envNumber("HANGAR_PROXY_WAKE_TIMEOUT_MS", QUEUE_DEFAULTS.wakeTimeoutMs),
});
const port = envNumber("HANGAR_PROXY_PORT", 8080);
await new Promise<void>((resolve, reject) => {
  proxy.server.once("error", reject);
  proxy.server.listen(port, env("HANGAR_PROXY_HOST", "0.0.0.0"), () => resolve());
});
const load = LoadPublisher.start({ nc, proxyId, region, stats: () => proxy.stats() });
const ops = await startOpsServer({
  port: envNumber("HANGAR_PROXY_OPS_PORT", 0),
  service: "proxy",
  registry,
  health: () => ({ ok: routes.live, proxy_id: proxyId, routes: routes.snapshot() }),
});
logger.info({ port, domains, proxy_id: proxyId, ops_port: ops.port }, "proxy ready");

onShutdown(logger, async () => {
  load.stop();
  await proxy.close();
  await ops.close();
  await routes.stop();
  store.close();
  await nc.drain();
  await telemetry.shutdown();
});

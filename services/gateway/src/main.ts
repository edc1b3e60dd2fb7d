import {
  appsStream,
  buildsStream,
  hostsStream,
  machinesStream,
  releasesStream,
  scalingStream,
} from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { BlobStore, ImageRegistry } from "@hangar/oci";
import { connectNats, env, envNumber, onShutdown } from "@hangar/service";
import { createLogger, startTelemetry } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { StreamBuildsBackend } from "./builds/backend.js";
import { BuildCatalog } from "./builds/catalog.js";
import { BuildContexts } from "./builds/contexts.js";
import { createApi, startApiServer } from "./http/mod.js";
import { StreamBackend } from "./machines/backend.js";
import { Catalog } from "./machines/catalog.js";
import { MachineCommands } from "./machines/commands.js";
import { serveWakes } from "./machines/wake.js";
import { StreamReleasesBackend } from "./releases/backend.js";
import { ReleaseCatalog } from "./releases/catalog.js";
import { ScalingCatalog } from "./scaling/catalog.js";

const telemetry = startTelemetry({ serviceName: "hangar-gateway" });
const logger = createLogger("gateway");
const nc = await connectNats(env("HANGAR_NATS_URL", "nats://127.0.0.1:4222"), "hangar-gateway");
const store = await EventStore.connect(nc);
for (const s of [appsStream, machinesStream, hostsStream, buildsStream, releasesStream, scalingStream]) {
  await ensureStream(store.jsm, s);
}
const catalog = await Catalog.start(store);
const commands = new MachineCommands(nc, store, catalog, env("HANGAR_REGION", "local"));
// The proxies' autostart: the gateway owns the machine commands, so it records their starts.
const wakes = serveWakes(nc, store, { onInternalError: (err) => logger.error({ err }, "wake failed") });
const builds = await BuildCatalog.start(store);
const releases = await ReleaseCatalog.start(store);
const scaling = await ScalingCatalog.start(store);
const appExists = (name: string) => catalog.app(name) !== undefined;
const buildsBackend = new StreamBuildsBackend({
  store,
  catalog: builds,
  contexts: await BuildContexts.open(nc),
  appExists,
  maxContextBytes: envNumber("HANGAR_MAX_CONTEXT_MB", 512) * 2 ** 20,
});
const releasesBackend = new StreamReleasesBackend({ store, catalog: releases, builds, appExists });
const registry = new Registry();
registry.setDefaultLabels({ service: "gateway" });
const blobs = await BlobStore.open(nc, { replicas: envNumber("HANGAR_BLOB_REPLICAS", 1) });
const images = await ImageRegistry.open(nc, blobs);
const app = createApi({
  backend: new StreamBackend(catalog, commands),
  token: env("HANGAR_TOKEN"),
  logger,
  metrics: registry,
  builds: buildsBackend,
  releases: releasesBackend,
  scaling: { scalingOf: (a, limit) => scaling.scalingOf(a, limit), appExists },
  registry: images,
});
const server = await startApiServer(app, {
  port: envNumber("HANGAR_GATEWAY_PORT", 4280),
  hostname: env("HANGAR_GATEWAY_HOST", "0.0.0.0"),
});
logger.info({ url: server.url, apps: catalog.appNames().length }, "gateway ready");

onShutdown(logger, async () => {
  await server.close();
  wakes.unsubscribe();
  await catalog.stop();
  await Promise.all([builds.stop(), releases.stop(), scaling.stop()]);
  store.close();
  await nc.drain();
  await telemetry.shutdown();
});

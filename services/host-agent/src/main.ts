import { cpus, hostname, totalmem } from "node:os";
import { join } from "node:path";
import { hostsStream, machinesStream } from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { BlobStore, bwrapPath, ImageRegistry, LayerStore, overlaySupported } from "@hangar/oci";
import { connectNats, env, envNumber, onShutdown, startOpsServer } from "@hangar/service";
import { createLogger, startTelemetry } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { HostAgent } from "./agent.js";
import { ProcessDriver } from "./driver/mod.js";
import { ImagePuller } from "./images.js";
import {
  netnsSupported,
  parseDriverMode,
  parseSandboxNetwork,
  sandboxCapability,
} from "./sandbox-support.js";

const telemetry = startTelemetry({ serviceName: "hangar-host-agent" });
const logger = createLogger("host-agent");
// Host ids are subject tokens: no dots, no wildcards.
const hostId = env("HANGAR_HOST_ID", `host-${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}`);
const home = env("HANGAR_HOME", join(process.env.HOME ?? "/root", ".hangar"));
const stateDir = env("HANGAR_HOST_STATE_DIR", join(home, "hosts", hostId));
const nc = await connectNats(env("HANGAR_NATS_URL", "nats://127.0.0.1:4222"), `hangar-host-agent-${hostId}`);
const store = await EventStore.connect(nc);
for (const s of [hostsStream, machinesStream]) await ensureStream(store.jsm, s);
const registry = new Registry();
// The layer cache lives beside the machine folders: the driver skips folders without a run.json.
const driver = new ProcessDriver({ stateDir });
const mode = parseDriverMode(process.env.HANGAR_HOST_DRIVER);
const sandbox = await sandboxCapability(mode, parseSandboxNetwork(process.env.HANGAR_SANDBOX_NETWORK), {
  bwrap: bwrapPath,
  overlay: overlaySupported,
  netns: netnsSupported,
});
// Asked for by name, the sandbox must work: better no agent than one that fails every OCI start.
if (mode === "sandbox" && !sandbox.ok) throw new Error(`HANGAR_HOST_DRIVER=sandbox: ${sandbox.reason}`);
let images: ImagePuller | undefined;
if (sandbox.ok) {
  const blobs = await BlobStore.open(nc, {});
  images = new ImagePuller({
    registry: await ImageRegistry.open(nc, blobs, {}),
    layers: new LayerStore(join(stateDir, "layers"), blobs),
    logger,
    metrics: registry,
  });
}
const suspend = driver.suspendMode();
logger.info(
  suspend,
  suspend.mode === "signals"
    ? "suspend uses SIGSTOP/SIGCONT: no cgroup freezer"
    : `suspend freezes each machine's cgroup (${suspend.mode})`,
);
logger.info(
  { mode, sandbox },
  sandbox.ok ? "OCI images run sandboxed" : "OCI images cannot run on this host",
);
const agent = new HostAgent({
  nc,
  store,
  driver,
  logger,
  registry,
  hostId,
  region: env("HANGAR_REGION", "local"),
  // Shared CPUs are overcommitted, as on Fly: a 2-core host takes 32 shared-cpu-1x machines by default.
  cpus: envNumber("HANGAR_HOST_CPUS", cpus().length * 16),
  memoryMb: envNumber("HANGAR_HOST_MEMORY_MB", Math.floor(totalmem() / 1024 / 1024)),
  address: env("HANGAR_HOST_ADDRESS", "127.0.0.1"),
  sandbox,
  ...(images ? { images } : {}),
});
await agent.start();
const ops = await startOpsServer({
  port: envNumber("HANGAR_HOST_OPS_PORT", 0),
  service: "host-agent",
  registry,
  health: () => agent.health(),
});
logger.info({ host_id: hostId, state_dir: stateDir, ops_port: ops.port }, "host agent ready");

onShutdown(logger, async () => {
  await agent.stop();
  // A stopped agent leaves its machines running for the next one to adopt, unless told otherwise
  // (npm start stops the whole platform, machines included).
  if (env("HANGAR_HOST_STOP_MACHINES", "0") === "1") {
    await Promise.allSettled(
      driver.running().map((m) => driver.stop(m.machineId, { signal: "SIGTERM", timeoutMs: 5_000 })),
    );
  }
  await ops.close();
  store.close();
  await nc.drain();
  await telemetry.shutdown();
});

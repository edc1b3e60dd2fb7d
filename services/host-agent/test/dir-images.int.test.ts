// The host agent's own check of dir: machines (defence in depth behind the gateway's): machines
// written straight to the MACHINES stream, as a gateway with other settings or none would, reach
// agents with and without HANGAR_DIR_IMAGE_ROOTS. A refused one is recorded as MachineStartFailed
// with the refusal's message, and nothing runs.
import { chmod, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DIR_IMAGES_OFF } from "@hangar/config";
import {
  appsStream,
  type ExistingMachine,
  hostsStream,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, loadAggregate } from "@hangar/eventstore";
import { createLogger } from "@hangar/telemetry";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostAgent } from "../src/agent.js";
import { ProcessDriver } from "../src/driver/mod.js";
import { removeStateDir, tempStateDir } from "./harness.js";
import { waitFor } from "./wait.js";

const APP = "dirapp";
const OFF = "h-dir-off";
const ON = "h-dir-on";

let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
let stateDir: string;
let examples: string;
const agents: Array<{ agent: HostAgent; driver: ProcessDriver }> = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await EventStore.connect(nc);
  for (const s of [appsStream, hostsStream, machinesStream]) await ensureStream(store.jsm, s);
  stateDir = await tempStateDir();
  // The allowed root: an app folder, and a link out of the root to /etc.
  examples = await mkdtemp(join(tmpdir(), "hangar-dir-examples-"));
  // Machines run as their range's ids: the folder must be open to them, as examples/ is.
  await chmod(examples, 0o755);
  await mkdir(join(examples, "app"));
  await symlink("/etc", join(examples, "etc-link"));
  for (const [hostId, dirImageRoots] of [
    [OFF, undefined],
    [ON, [examples]],
  ] as const) {
    const driver = new ProcessDriver({ stateDir: join(stateDir, hostId), pollIntervalMs: 50 });
    const agent = new HostAgent({
      nc,
      store,
      driver,
      logger: createLogger("host-agent-test", { level: "silent" }),
      hostId,
      region: "local",
      cpus: 8,
      memoryMb: 4096,
      address: "127.0.0.1",
      ...(dirImageRoots ? { dirImageRoots } : {}),
    });
    await agent.start();
    agents.push({ agent, driver });
  }
}, 60_000);

afterAll(async () => {
  for (const { agent, driver } of agents.splice(0)) {
    await agent.stop();
    await driver.close();
  }
  if (stateDir) await removeStateDir(stateDir);
  if (examples) await rm(examples, { recursive: true, force: true });
  await nc?.drain();
  await server?.stop();
});

/** Creates a machine on `hostId` and waits until its agent has started it or failed to. */
async function placed(id: string, hostId: string, config: Record<string, unknown>): Promise<ExistingMachine> {
  await new CommandHandler(store, machinesStream, machineDecider).handle(
    machineAggregateId(APP, id),
    {
      type: "CreateMachine",
      machineId: id,
      app: APP,
      name: `${APP}-${id}`,
      region: "local",
      instanceId: `v1-${id}`,
      configJson: JSON.stringify(config),
      skipLaunch: false,
      hostId,
    },
    { commandId: `create-${id}` },
  );
  return waitFor(`machine ${id} to start or fail`, async () => {
    const { state } = await loadAggregate(store, machinesStream, machineDecider, machineAggregateId(APP, id));
    return state.status === "started" || state.status === "failed" ? state : undefined;
  });
}

const idle = { exec: ["node", "-e", "setInterval(() => {}, 1000)"] };

const failedWith = (failure: string | RegExp) => ({
  status: "failed",
  failure: typeof failure === "string" ? failure : expect.stringMatching(failure),
});

describe("dir: machines on a host agent", () => {
  it("are refused without HANGAR_DIR_IMAGE_ROOTS, with the message that says how to enable them", async () => {
    const m = await placed("off1", OFF, { image: `dir:${join(examples, "app")}`, init: idle });
    expect(m).toMatchObject(failedWith(DIR_IMAGES_OFF));
  });

  it("run from under an allowed root", async () => {
    const m = await placed("on1", ON, { image: `dir:${join(examples, "app")}`, init: idle });
    expect(m.status, m.failure).toBe("started");
  });

  it("with a root allowed, refuse dir:/, init.exec /bin/sh and a link out of the root", async () => {
    const app = `dir:${join(examples, "app")}`;
    expect(await placed("on2", ON, { image: "dir:/", init: idle })).toMatchObject(
      failedWith(/^dir:\/ is refused/),
    );
    expect(await placed("on3", ON, { image: app, init: { exec: ["/bin/sh"] } })).toMatchObject(
      failedWith(/^init.exec \/bin\/sh is outside HANGAR_DIR_IMAGE_ROOTS/),
    );
    expect(await placed("on4", ON, { image: `dir:${join(examples, "etc-link")}`, init: idle })).toMatchObject(
      failedWith(/\(its real path is \/etc\)/),
    );
  });
});

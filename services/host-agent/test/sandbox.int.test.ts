import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  appDecider,
  appsStream,
  type ExistingMachine,
  hostsStream,
  type MachineCommand,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, loadAggregate } from "@hangar/eventstore";
import {
  BlobStore,
  createLayer,
  ImageRegistry,
  LayerStore,
  overlaySupported,
  platformBaseImages,
  writeImage,
} from "@hangar/oci";
import { createLogger } from "@hangar/telemetry";
import {
  createNetworkTopology,
  type NatsServer,
  type NetworkTopology,
  startNatsServer,
  type TopologyHost,
} from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostAgent } from "../src/agent.js";
import { RANGE_BASE, RANGE_SIZE } from "../src/driver/id-ranges.js";
import { ProcessDriver } from "../src/driver/mod.js";
import { IP, isNetnsAddress, netnsName, removeNetns, vethName } from "../src/driver/netns.js";
import { isMountPoint, rootfsPaths } from "../src/driver/rootfs.js";
import { ImagePuller } from "../src/images.js";
import { HostNetwork } from "../src/network/host-network.js";
import { OrgNetworks } from "../src/network/org-networks.js";
import type { SandboxCapability } from "../src/run-spec.js";
import { sandboxCapability } from "../src/sandbox-support.js";
import { cgroupFrozen, cgroupPids, groupMembers, removeStateDir, tempStateDir } from "./harness.js";
import { waitFor } from "./wait.js";

// The agent uses the platform's fixed stream names: a nats-server of its own.
let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;
let registry: ImageRegistry;
let blobs: BlobStore;
let stateDir: string;
let imageDigest: string;
let images: ImagePuller;
const logger = createLogger("host-agent-test", { level: "silent" });
const metrics = new Registry();
const running: Array<{ agent: HostAgent; driver: ProcessDriver }> = [];
const HOST = "h-sandbox";
const NETNS_HOST = "h-netns";
/** The netns agent's host network: a namespace of a test topology, never this test's own. */
let topology: NetworkTopology | undefined;

/**
 * The app in the image: answers with what it sees, and remembers files in its root filesystem, in
 * /app/data, which the image's node user owns. /probe tries writes as whatever user the app runs as.
 */
const SERVER = `
const fs = require("node:fs");
const boot = Math.random().toString(36).slice(2);
const read = (p) => { try { return fs.readFileSync(p, "utf8"); } catch { return null; } };
const tryWrite = (p) => { try { fs.writeFileSync(p, "written"); return "ok"; } catch (err) { return err.code; } };
require("node:http").createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  if (req.url === "/probe") {
    return res.end(JSON.stringify({
      uid: process.getuid(), gid: process.getgid(),
      data: tryWrite("/app/data/by-app.txt"), etc: tryWrite("/etc/by-app.txt"),
    }));
  }
  if (req.url === "/write") fs.writeFileSync("/app/data/note.txt", "kept");
  res.end(JSON.stringify({
    boot, cwd: process.cwd(), uid: process.getuid(), env: process.env,
    note: read("/app/data/note.txt"), graceful: read("/app/data/graceful.txt"),
  }));
}).listen(Number(process.env.PORT), "0.0.0.0", () => console.log("listening on " + process.env.PORT));
// Fly stops machines with SIGINT: a graceful exit leaves a mark in the rootfs.
process.on("SIGINT", () => { fs.writeFileSync("/app/data/graceful.txt", "yes"); process.exit(0); });
`;

/** The platform's node:20-slim plus one layer with /app/server.js; returns the manifest digest. */
async function writeHelloImage(): Promise<string> {
  const base = await platformBaseImages(registry).make("node:20-slim");
  if (base === undefined) throw new Error("the platform makes node:20-slim");
  const work = await mkdtemp(join(tmpdir(), "hangar-hello-layer-"));
  try {
    await mkdir(join(work, "root", "app", "data"), { recursive: true });
    await writeFile(join(work, "root", "app", "server.js"), SERVER);
    // The image's node user (1000:1000 in the node image) owns /app/data: the layer's tar header says so.
    await chown(join(work, "root", "app", "data"), 1000, 1000);
    const layer = await createLayer(join(work, "root"), join(work, "layer.tar.gz"));
    await blobs.putFile(layer.file, layer.digest);
    const baseRun = base.config.config;
    const image = (tag: string, user: string | undefined) =>
      writeImage(registry, {
        repository: "hello",
        tag,
        config: {
          ...base.config,
          config: {
            ...baseRun,
            Env: [...(baseRun.Env ?? []), "GREETING=from-the-image", "FLY_REGION=overridden-by-fly"],
            Cmd: ["node", "server.js"],
            WorkingDir: "/app",
            ...(user !== undefined ? { User: user } : {}),
          },
          rootfs: { type: "layers", diff_ids: [...base.config.rootfs.diff_ids, layer.diffId] },
        },
        layers: [...base.manifest.layers.map((l) => ({ digest: l.digest, size: l.size })), layer],
      });
    // The same layers as another user: tags share what is under them.
    await image("v3-node", "node");
    return await image("v3", undefined);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * An agent for `hostId`; each host has its own state folder, as each host has its own disk. With a
 * topology host, its machines in namespaces are on that host's network, with 6PN.
 */
async function startAgent(
  hostId: string,
  sandbox: SandboxCapability,
  host?: TopologyHost,
): Promise<HostAgent> {
  const dir = join(stateDir, hostId);
  await mkdir(dir, { recursive: true });
  const hostNetwork = host
    ? await HostNetwork.open({
        netns: host.netns,
        hostId,
        machineCidr: host.machineCidr,
        egressDeny: [],
        controlSources: [`${host.rootIp}/32`],
        logger,
      })
    : undefined;
  const driver = new ProcessDriver({
    stateDir: dir,
    pollIntervalMs: 50,
    ...(hostNetwork ? { network: hostNetwork } : {}),
  });
  const agent = new HostAgent({
    nc,
    store,
    driver,
    logger,
    hostId,
    region: "local",
    cpus: 8,
    memoryMb: 4096,
    address: "127.0.0.1",
    sandbox,
    images,
    ...(hostNetwork
      ? { hostNetwork, orgNetworks: await OrgNetworks.open(nc, { bucket: "sandbox-test-6pn" }) }
      : {}),
  });
  await agent.start();
  running.push({ agent, driver });
  return agent;
}

async function stopAgent(agent: HostAgent): Promise<void> {
  const i = running.findIndex((r) => r.agent === agent);
  const [entry] = running.splice(i, 1);
  await entry?.agent.stop();
  await entry?.driver.close();
}

function command(app: string, id: string, cmd: MachineCommand) {
  return new CommandHandler(store, machinesStream, machineDecider).handle(machineAggregateId(app, id), cmd, {
    commandId: `${cmd.type}-${id}-${Date.now()}`,
  });
}

async function createMachine(id: string, hostId: string, config: Record<string, unknown>): Promise<void> {
  await command("hello", id, {
    type: "CreateMachine",
    machineId: id,
    app: "hello",
    name: `hello-${id}`,
    region: "local",
    instanceId: `v1-${id}`,
    configJson: JSON.stringify(config),
    skipLaunch: false,
    hostId,
  });
}

/** Waits until the machine reaches `status` and returns it. */
function machineIn(
  id: string,
  status: ExistingMachine["status"],
  timeoutMs = 30_000,
  where: (m: ExistingMachine) => boolean = () => true,
): Promise<ExistingMachine> {
  return waitFor(
    `machine ${id} to be ${status}`,
    async () => {
      const { state } = await loadAggregate(
        store,
        machinesStream,
        machineDecider,
        machineAggregateId("hello", id),
      );
      return state.status === status && where(state) ? state : undefined;
    },
    timeoutMs,
  );
}

interface Seen {
  boot: string;
  cwd: string;
  uid: number;
  env: Record<string, string>;
  note: string | null;
  graceful: string | null;
}

function get<T = Seen>(m: ExistingMachine, path = "/"): Promise<T> {
  return waitFor(`http://${m.privateIp}:${m.port}${path}`, async () => {
    try {
      return (await (await fetch(`http://${m.privateIp}:${m.port}${path}`)).json()) as T;
    } catch {
      return undefined;
    }
  });
}

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await EventStore.connect(nc);
  for (const s of [hostsStream, machinesStream]) await ensureStream(store.jsm, s);
  blobs = await BlobStore.open(nc, { bucket: "sandbox-test-blobs" });
  registry = await ImageRegistry.open(nc, blobs, { bucket: "sandbox-test-registry" });
  stateDir = await tempStateDir();
  imageDigest = await writeHelloImage();
  // One cache and one puller for every agent of the test, as on a host whose agent restarts.
  images = new ImagePuller({
    registry,
    layers: new LayerStore(join(stateDir, "layers"), blobs),
    logger,
    metrics,
  });
}, 120_000);

afterAll(async () => {
  for (const { agent, driver } of running.splice(0)) {
    await agent.stop();
    await driver.close();
  }
  for (const id of ["n1", "n2"]) await removeNetns(id, topology?.hosts[0]?.netns);
  for (const host of [HOST, NETNS_HOST]) if (stateDir) await removeStateDir(join(stateDir, host));
  if (stateDir) await removeStateDir(stateDir);
  await topology?.close();
  await nc?.drain();
  await server?.stop();
});

describe.runIf(process.getuid?.() === 0)("OCI images in the sandbox driver", () => {
  let agent: HostAgent;
  let first: ExistingMachine;
  let seen: Seen;
  const ref = () => `registry.hangar.internal/hello@${imageDigest}`;

  it("pulls the image, runs its CMD in its WorkingDir with its Env under Fly's, and serves HTTP", async () => {
    expect(await overlaySupported()).toBe(true);
    // As a host where crun's state dir came first leaves it: /run/hangar closed to the machine's
    // mapped root. The machine must start all the same (its rootfs parents are opened for it).
    await mkdir("/run/hangar", { recursive: true });
    await chmod("/run/hangar", 0o700);
    agent = await startAgent(HOST, { ok: true, network: "host" });
    await createMachine("m1", HOST, { image: ref(), env: { FROM_CONFIG: "yes", GREETING: "from-config" } });
    first = await machineIn("m1", "started", 60_000);
    seen = await get(first);
    expect(seen.cwd).toBe("/app");
    expect(seen.uid).toBe(0);
    expect(seen.env).toMatchObject({
      FLY_APP_NAME: "hello",
      FLY_MACHINE_ID: "m1",
      FLY_REGION: "local",
      FLY_IMAGE_REF: ref(),
      FLY_PRIVATE_IP: first.privateIp,
      PORT: String(first.port),
      // config.env wins over the image's Env, which Fly's variables override.
      GREETING: "from-config",
      FROM_CONFIG: "yes",
      NODE_VERSION: expect.stringMatching(/^20\.\d+\.\d+$/),
      HOME: "/root",
    });
    // Nothing of the host's environment leaks in.
    expect(Object.keys(seen.env)).not.toContain("VITEST");
    const rootfs = rootfsPaths(join(stateDir, HOST, "m1")).target;
    // Mounted where any user can reach it, not in the (0700) state folder.
    expect(rootfs.startsWith("/run/hangar/rootfs/")).toBe(true);
    expect(isMountPoint(rootfs)).toBe(true);
    // The sandbox sees the image, not the host: the app's file is at /app, the host's /work is absent.
    expect(existsSync(join(rootfs, "app", "server.js"))).toBe(true);
    expect(existsSync(join(rootfs, "work"))).toBe(false);
    // Its output reaches the machine's log files, which the agent tails.
    expect(readFileSync(join(stateDir, HOST, "m1", "stdout.log"), "utf8")).toContain(
      `listening on ${first.port}`,
    );
    // Pull time is on /metrics.
    expect(await metrics.getSingleMetricAsString("hangar_host_image_pull_seconds")).toMatch(
      /hangar_host_image_pull_seconds_count\{outcome="ok"\} 1/,
    );
  });

  it("stop (SIGINT, graceful) and start keep the root filesystem's files", async () => {
    expect((await get(first, "/write")).note).toBe("kept");
    // The write went to the machine's own upper layer, not into the shared layer cache.
    expect(readFileSync(join(stateDir, HOST, "m1", "upper", "app", "data", "note.txt"), "utf8")).toBe("kept");
    await command("hello", "m1", { type: "StopMachine", signal: "", timeoutS: 10, nowMs: Date.now() });
    const stopped = await machineIn("m1", "stopped");
    // The app itself got the SIGINT and exited 0: bwrap's monitor did not take it down first.
    expect(stopped.lastExitCode).toBe(0);
    await command("hello", "m1", { type: "StartMachine", nowMs: Date.now() });
    const again = await machineIn("m1", "started");
    const after = await get(again);
    expect(after.boot).not.toBe(seen.boot);
    expect(after.note).toBe("kept");
    expect(after.graceful).toBe("yes");
    first = again;
    seen = after;
  });

  it("a new agent adopts the running machine and keeps its rootfs mounted; nothing starts twice", async () => {
    await stopAgent(agent);
    agent = await startAgent(HOST, { ok: true, network: "host" });
    // Give the new agent time to reconcile; a second start would show as a new boot.
    await sleep(500);
    const now = await machineIn("m1", "started");
    expect(now.pid).toBe(first.pid);
    expect(now.startTime).toBe(first.startTime);
    expect((await get(now)).boot).toBe(seen.boot);
    expect(isMountPoint(rootfsPaths(join(stateDir, HOST, "m1")).target)).toBe(true);
    expect(
      running
        .at(-1)
        ?.driver.running()
        .map((m) => m.pid),
    ).toEqual([first.pid]);
  });

  it("suspend freezes the sandboxed app; start resumes the same process", async () => {
    await command("hello", "m1", { type: "SuspendMachine", nowMs: Date.now() });
    const suspended = await machineIn("m1", "suspended");
    const driver = running.find((r) => r.agent === agent)?.driver as ProcessDriver;
    expect(agent.health().suspend_mode).toBe(driver.suspendMode().mode);
    const ref = driver.cgroupOf("m1");
    if (driver.suspendMode().mode !== "signals") {
      if (!ref) throw new Error("a machine started with a freezer has a cgroup");
      // bwrap's monitor, the sandbox's init and the app are the wrapper's descendants: all frozen with it.
      expect(cgroupFrozen(ref)).toBe(true);
      const members = groupMembers(first.pid);
      expect(members.length).toBeGreaterThanOrEqual(3);
      expect(cgroupPids(ref)).toEqual(expect.arrayContaining(members));
    }
    const pending = fetch(`http://${suspended.privateIp}:${suspended.port}/`).then(
      async (res) => (await res.json()) as Seen,
    );
    expect(await Promise.race([pending, sleep(300).then(() => "no answer")])).toBe("no answer");
    await command("hello", "m1", { type: "StartMachine", nowMs: Date.now() });
    expect((await machineIn("m1", "started")).pid).toBe(first.pid);
    expect((await pending).boot).toBe(seen.boot);
  });

  it("stopping a suspended machine discards it at once; the next start is a fresh process", async () => {
    await command("hello", "m1", { type: "SuspendMachine", nowMs: Date.now() });
    const suspended = await machineIn("m1", "suspended");
    const started = Date.now();
    // A graceful stop would wait up to 30 s for SIGINT to end the app: a suspended one is killed.
    await command("hello", "m1", { type: "StopMachine", signal: "SIGINT", timeoutS: 30, nowMs: Date.now() });
    const stopped = await machineIn("m1", "stopped");
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(stopped.lastExitCode).toBe(137);
    await command("hello", "m1", { type: "StartMachine", nowMs: Date.now() });
    const fresh = await machineIn("m1", "started");
    expect(fresh.pid).not.toBe(suspended.pid);
    const now = await get(fresh);
    expect(now.boot).not.toBe(seen.boot);
    first = fresh;
    seen = now;
  });

  it("an update to a new machine version starts from a fresh root filesystem", async () => {
    await command("hello", "m1", {
      type: "UpdateMachine",
      instanceId: "v2-m1",
      configJson: JSON.stringify({ image: ref() }),
      name: "hello-m1",
      skipLaunch: false,
      nowMs: Date.now(),
    });
    const updated = await machineIn("m1", "started", 30_000, (m) => m.instanceId === "v2-m1");
    const fresh = await get(updated);
    expect(fresh.env.FLY_MACHINE_VERSION).toBe("v2-m1");
    expect(fresh.note).toBeNull();
    expect(fresh.graceful).toBeNull();
  });

  it("destroy unmounts and removes the machine's rootfs; the shared layers stay", async () => {
    await command("hello", "m1", { type: "DestroyMachine", force: true, nowMs: Date.now() });
    await machineIn("m1", "destroyed");
    const target = rootfsPaths(join(stateDir, HOST, "m1")).target;
    expect(isMountPoint(target)).toBe(false);
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(stateDir, HOST, "m1"))).toBe(false);
    expect(existsSync(join(stateDir, "layers"))).toBe(true);
  });

  it("runs as the image's USER, resolved in the image's /etc/passwd, owning its files and not root's", async () => {
    await createMachine("m4", HOST, { image: "hello:v3-node" });
    const m = await machineIn("m4", "started");
    const seenAs = await get(m);
    expect(seenAs.uid).toBe(1000);
    // Docker's HOME for a user the image sets no HOME for.
    expect(seenAs.env.HOME).toBe("/");
    // Its own folder is writable, root's /etc is not.
    expect(await get(m, "/probe")).toEqual({ uid: 1000, gid: 1000, data: "ok", etc: "EACCES" });
    // exec runs as that same user, in the image's WorkingDir.
    const driver = running.find((r) => r.driver.running().some((x) => x.machineId === "m4"))?.driver;
    const inside = await driver?.exec("m4", {
      command: ["sh", "-c", "grep -E '^(Uid|Gid):' /proc/self/status; pwd"],
      timeoutMs: 10_000,
    });
    expect(inside?.exitCode, inside?.stderr).toBe(0);
    expect(inside?.stdout).toMatch(/^Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n\/app\n$/);
    // On the host, uid 1000 of the machine is 1000 into its org's range: neither root nor host user 1000.
    const upper = join(stateDir, HOST, "m4", "upper");
    const written = statSync(join(upper, "app", "data", "by-app.txt"));
    expect(written.uid).toBe(written.gid);
    expect(written.uid > RANGE_BASE && (written.uid - RANGE_BASE) % RANGE_SIZE).toBe(1000);
    expect(existsSync(join(upper, "etc", "by-app.txt"))).toBe(false);
    // setpriv between the wrapper and bwrap: the SIGINT still reaches the app, not bwrap's monitor.
    await command("hello", "m4", { type: "StopMachine", signal: "", timeoutS: 10, nowMs: Date.now() });
    expect((await machineIn("m4", "stopped")).lastExitCode).toBe(0);
    expect(statSync(join(upper, "app", "data", "graceful.txt")).uid).toBe(written.uid);
    await command("hello", "m4", { type: "DestroyMachine", force: true, nowMs: Date.now() });
    await machineIn("m4", "destroyed");
  });

  it("writes the config's files into the root filesystem at every boot, the image user's, never through a link out of it", async () => {
    // A host folder a link inside the machine names: the machine's own /tmp/<name> is meant, never this.
    const hostFolder = await mkdtemp(join(tmpdir(), "hangar-files-escape-"));
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    await createMachine("m5", HOST, {
      image: "hello:v3-node",
      files: [
        { guest_path: "/etc/app/settings.conf", raw_value: b64("from the config\n"), mode: 0o600 },
        { guest_path: "/app/data/out/escape.txt", raw_value: b64("inside\n") },
      ],
    });
    const driver = () => running.find((r) => r.driver.running().some((x) => x.machineId === "m5"))?.driver;
    const sh = async (script: string) => {
      const run = await driver()?.exec("m5", { command: ["sh", "-c", script], timeoutMs: 10_000 });
      expect(run?.exitCode, run?.stderr).toBe(0);
      return run?.stdout;
    };
    try {
      await machineIn("m5", "started");
      // Readable (0600) by the image's user (node, 1000), whose file it is; its folder is root's.
      expect(
        await sh("id -u; stat -c '%a %u' /etc/app/settings.conf /etc/app; cat /etc/app/settings.conf"),
      ).toBe("1000\n600 1000\n755 0\nfrom the config\n");
      // The machine changes the file and swaps the file's folder for a link to a path that, on the
      // host, is the host's folder; the next boot writes the file again, inside the machine.
      await sh(
        `echo changed > /etc/app/settings.conf; mv /app/data/out /app/data/old; ln -s ${hostFolder} /app/data/out`,
      );
      await command("hello", "m5", { type: "StopMachine", signal: "", timeoutS: 10, nowMs: Date.now() });
      await machineIn("m5", "stopped");
      await command("hello", "m5", { type: "StartMachine", nowMs: Date.now() });
      await machineIn("m5", "started", 30_000, (m) => m.pid !== 0);
      expect(await sh("cat /etc/app/settings.conf; cat /app/data/out/escape.txt")).toBe(
        "from the config\ninside\n",
      );
      expect(readdirSync(hostFolder)).toEqual([]);
      const upper = join(stateDir, HOST, "m5", "upper");
      expect(readFileSync(join(upper, hostFolder, "escape.txt"), "utf8")).toBe("inside\n");
    } finally {
      await command("hello", "m5", { type: "DestroyMachine", force: true, nowMs: Date.now() });
      await machineIn("m5", "destroyed");
      await rm(hostFolder, { recursive: true, force: true });
    }
  });

  it("an image the registry does not have fails the start with the registry's message", async () => {
    await createMachine("m2", HOST, { image: "registry.hangar.internal/nope:v1" });
    const failed = await machineIn("m2", "failed");
    expect(failed.failure).toMatch(/image registry\.hangar\.internal\/nope:v1 is not in Hangar's registry/);
  });

  it("a host that cannot sandbox fails OCI starts saying what is missing", async () => {
    const sandbox = await sandboxCapability("auto", "host", {
      runtime: async () => ({ ok: false, reason: "crun is not installed (apt-get install crun)" }),
      overlay: () => true,
      netns: () => true,
    });
    await startAgent("h-no-crun", sandbox);
    await createMachine("m3", "h-no-crun", { image: ref() });
    const failed = await machineIn("m3", "failed");
    expect(failed.failure).toBe(
      `image ${ref()} cannot run on this host: the sandbox driver cannot run here: ` +
        "crun is not installed (apt-get install crun)",
    );
  });
});

/** Binds the port the config names, whatever PORT says: the kind of app only a namespace of its own can run twice. */
const FIXED_PORT_SERVER = `
require("node:http").createServer((req, res) => {
  res.end(JSON.stringify({ id: process.env.FLY_MACHINE_ID, port: process.env.PORT, ip: process.env.FLY_PRIVATE_IP, uid: process.getuid() }));
}).listen(8080, "0.0.0.0");
`;

describe.runIf(process.getuid?.() === 0)("OCI images in network namespaces of their own", () => {
  const config = (image = `hello@${imageDigest}`) => ({
    image,
    init: { exec: ["node", "-e", FIXED_PORT_SERVER] },
    services: [{ internal_port: 8080 }],
  });
  let host: TopologyHost;

  beforeAll(async () => {
    topology = await createNetworkTopology({ hosts: 1, internet: false });
    host = topology.hosts[0] as TopologyHost;
    // The app's org puts its machines on that org's 6PN.
    await ensureStream(store.jsm, appsStream);
    await new CommandHandler(store, appsStream, appDecider).handle(
      "hello",
      { type: "CreateApp", name: "hello", orgSlug: "sandbox-org" },
      { commandId: "create-app-hello" },
    );
  }, 60_000);

  it("two machines listen on the same internal port, each at its own namespace address", async () => {
    await startAgent(NETNS_HOST, { ok: true, network: "netns" }, host);
    await createMachine("n1", NETNS_HOST, config());
    // USER node in a namespace: `ip netns exec` (root) first, then setpriv, then bwrap as the user.
    await createMachine("n2", NETNS_HOST, config("hello:v3-node"));
    const [a, b] = await Promise.all([machineIn("n1", "started"), machineIn("n2", "started")]);
    for (const [m, id, uid] of [
      [a, "n1", 0],
      [b, "n2", 1000],
    ] as const) {
      expect(isNetnsAddress(m.privateIp, host.machineCidr)).toBe(true);
      expect(m.privateIpv6).toMatch(/^fdaa:/);
      expect(m.port).toBe(8080);
      // FLY_PRIVATE_IP is the 6PN address, as on Fly; the control plane reaches the machine at its IPv4 one.
      expect(await get(m)).toEqual({ id, port: "8080", ip: m.privateIpv6, uid });
    }
    expect(a.privateIp).not.toBe(b.privateIp);
    expect(a.privateIpv6).not.toBe(b.privateIpv6);
  });

  it("a machine on its org's network asks the host's resolver and knows its 6PN address as fly-local-6pn", async () => {
    const n2 = await machineIn("n2", "started");
    const driver = running.find((r) => r.driver.running().some((x) => x.machineId === "n2"))?.driver;
    const inside = await driver?.exec("n2", {
      command: ["sh", "-c", "cat /etc/resolv.conf /etc/hosts; touch /etc/resolv.conf || echo read-only"],
      timeoutMs: 10_000,
    });
    expect(inside?.stdout).toContain("nameserver fdaa::3\n");
    expect(inside?.stdout).toContain(`${n2.privateIpv6}\tfly-local-6pn\n${n2.privateIpv6}\tn2\n`);
    expect(inside?.stdout).toContain("read-only");
    // Its address and route are in the host's namespace, not this test's.
    const route = await topology?.exec(host.netns, [IP, "-6", "route", "show", `${n2.privateIpv6}/128`]);
    expect(route?.stdout).toContain(vethName("n2"));
    expect(existsSync(join("/sys/class/net", vethName("n2")))).toBe(false);
  });

  it("the namespaces outlive an agent restart; destroy deletes them", async () => {
    const [entry] = running.filter((r) => r.driver.running().some((m) => m.machineId === "n1"));
    if (!entry) throw new Error("the netns agent is not running");
    const before = await machineIn("n1", "started");
    await stopAgent(entry.agent);
    await startAgent(NETNS_HOST, { ok: true, network: "netns" }, host);
    await sleep(500);
    const after = await machineIn("n1", "started");
    expect(after.pid).toBe(before.pid);
    expect((await get<{ id: string }>(after)).id).toBe("n1");

    await command("hello", "n1", { type: "DestroyMachine", force: true, nowMs: Date.now() });
    await machineIn("n1", "destroyed");
    expect(existsSync(join("/run/netns", netnsName("n1")))).toBe(false);
    const veth = await topology?.exec(host.netns, [IP, "link", "show", "dev", vethName("n1")]);
    expect(veth?.code).not.toBe(0);
    // The other machine's namespace is untouched.
    expect((await get<{ id: string }>(await machineIn("n2", "started"))).id).toBe("n2");
  });
});

import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import {
  aggregateSubject,
  CommandHandler,
  EVENT_TYPES_HEADER,
  EventStore,
  ensureStream,
  prefixedStream,
} from "@hangar/eventstore";
import { serveWakes } from "@hangar/gateway";
import { type LoadSample, type ProxyHeartbeat, subjects } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createProxy, type EdgeProxy } from "../src/engine/mod.js";
import { LoadPublisher } from "../src/load.js";
import { StreamRouteTable } from "../src/routes/route-table.js";
import { CommandWaker } from "../src/wake.js";
import { send, startUpstream, stopUpstreams } from "./harness.js";

// Streams, apps and the proxy id carry this run's suffix: other files share the nats-server.
const suffix = randomBytes(4).toString("hex");
const prefix = `proxyscale${suffix}`;
const streams = {
  apps: prefixedStream(appsStream, prefix),
  machines: prefixedStream(machinesStream, prefix),
};
const proxyId = `test-proxy-${suffix}`;
const region = "local";
const CONFIG = JSON.stringify({
  services: [
    {
      internal_port: 8080,
      ports: [{ port: 80, handlers: ["http"] }],
      concurrency: { type: "requests", soft_limit: 100 },
    },
  ],
});

let nc: NatsConnection;
let store: EventStore;
let routes: StreamRouteTable;
let proxy: EdgeProxy;
let load: LoadPublisher;
let port: number;
let apps: CommandHandler<AppState, AppCommand, AppEvent>;
let machines: CommandHandler<MachineState, MachineCommand, MachineEvent>;
const subs: Subscription[] = [];
// Starts the proxy asked for: the decider would also turn a second start into nothing, so this is
// what shows that concurrent requests share one wake-up.
let wakeCalls = 0;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  for (const s of Object.values(streams)) await ensureStream(store.jsm, s);
  apps = new CommandHandler(store, streams.apps, appDecider);
  machines = new CommandHandler(store, streams.machines, machineDecider);
  routes = await StreamRouteTable.start(store, streams);
  // The gateway's side of a wake, on this file's stream and subject.
  const wakeSubject = `${prefix}.cmd.machines.wake`;
  subs.push(serveWakes(nc, store, { stream: streams.machines, subject: wakeSubject }));
  const waker = new CommandWaker(nc, {
    machineSeq: (app, id) => routes.machineSeq(app, id),
    subject: wakeSubject,
  });
  proxy = createProxy({
    routes,
    region,
    waker: {
      start: (app, machine) => {
        wakeCalls++;
        return waker.start(app, machine);
      },
    },
    logger: createLogger("proxy-scaling-test", { level: "silent" }),
  });
  await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
  port = (proxy.server.address() as AddressInfo).port;
  load = LoadPublisher.start({ nc, proxyId, region, stats: () => proxy.stats(), intervalMs: 200 });
});

afterAll(async () => {
  load?.stop();
  for (const s of subs) s.unsubscribe();
  await proxy?.close();
  await routes?.stop();
  await stopUpstreams();
  store?.close();
  await nc?.drain();
});

let commands = 0;
const meta = () => ({ commandId: `test-${suffix}-${++commands}` });

/** What the host agent would record for the machine's process: started at the test's server. */
function recordStarted(app: string, machineId: string, upstreamPort: number) {
  return machines.handle(
    machineAggregateId(app, machineId),
    {
      type: "RecordStarted",
      hostId: "h1",
      pid: 1000 + commands,
      privateIp: "127.0.0.1",
      privateIpv6: "",
      port: upstreamPort,
      startTime: Date.now(),
      adopted: false,
    },
    meta(),
  );
}

/** An app with one machine that ran once and is stopped now. */
async function appWithStoppedMachine(app: string, machineId: string, orgSlug = "personal"): Promise<void> {
  await apps.handle(app, { type: "CreateApp", name: app, orgSlug }, meta());
  await stoppedMachine(app, machineId);
}

/** A machine of the app that ran once and is stopped now. */
async function stoppedMachine(app: string, machineId: string): Promise<void> {
  const id = machineAggregateId(app, machineId);
  await machines.handle(
    id,
    {
      type: "CreateMachine",
      machineId,
      app,
      name: machineId,
      region,
      hostId: "h1",
      instanceId: "i1",
      configJson: CONFIG,
      skipLaunch: false,
    },
    meta(),
  );
  await recordStarted(app, machineId, 1);
  await machines.handle(
    id,
    { type: "StopMachine", signal: "SIGINT", timeoutS: 5, nowMs: Date.now() },
    meta(),
  );
  await machines.handle(
    id,
    { type: "RecordExited", exitCode: 0, signal: "", codeUnknown: false, restart: false },
    meta(),
  );
}

/** Collects what arrives on a core NATS subject, decoded as JSON. */
function collect<T>(subject: string): T[] {
  const got: T[] = [];
  const sub = nc.subscribe(subject, {
    callback: (_err, msg) => {
      got.push(msg.json<T>());
    },
  });
  subs.push(sub);
  return got;
}

describe("wake-up from the MACHINES stream", () => {
  it("starts a stopped machine once for 50 simultaneous requests and serves them all once it runs", async () => {
    const app = `sleepy-${suffix}`;
    await appWithStoppedMachine(app, "m1");
    await expect.poll(() => routes.lookup(app)?.sleeping.map((m) => m.machineId)).toEqual(["m1"]);
    expect(routes.lookup(app)?.settings.type).toBe("requests");

    // Every decision on the machine's subject, as the host agent would see it.
    let startRequests = 0;
    const sub = nc.subscribe(aggregateSubject(streams.machines, machineAggregateId(app, "m1")), {
      callback: (_err, msg) => {
        if (msg.headers?.get(EVENT_TYPES_HEADER).includes("MachineStartRequested")) startRequests++;
      },
    });
    subs.push(sub);
    await nc.flush();

    const up = await startUpstream("m1");
    const pending = Array.from({ length: 50 }, () => send(port, `${app}.localhost`));
    await expect.poll(() => proxy.stats().apps.find((a) => a.app === app)?.queued).toBe(50);
    await expect.poll(() => startRequests).toBe(1);
    await expect.poll(() => routes.lookup(app)?.starting).toEqual(["m1"]);
    expect(up.hits).toBe(0);

    await recordStarted(app, "m1", up.port);
    const answers = await Promise.all(pending);
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    expect(up.hits).toBe(50);
    expect(startRequests).toBe(1);
    expect(wakeCalls).toBe(1);
  });
});

describe("fly-replay between apps of the stream's organizations", () => {
  const replaysTo =
    (target: string) =>
    (req: IncomingMessage, res: ServerResponse): void => {
      req.resume();
      res.writeHead(409, { "fly-replay": `app=${target}` }).end();
    };

  /** Starts the app's stopped machine at `upstreamPort` and waits until the proxy routes to it. */
  async function startAt(app: string, machineId: string, upstreamPort: number): Promise<void> {
    await machines.handle(
      machineAggregateId(app, machineId),
      { type: "StartMachine", nowMs: Date.now() },
      meta(),
    );
    await recordStarted(app, machineId, upstreamPort);
    await expect.poll(() => routes.lookup(app)?.backends.length).toBe(1);
  }

  it("replays to a sleeping app of the same organization, waking it, and not to another organization's", async () => {
    const router = `router-${suffix}`;
    const worker = `worker-${suffix}`;
    const router2 = `router2-${suffix}`;
    const foreign = `foreign-${suffix}`;
    await appWithStoppedMachine(router, "r1");
    await appWithStoppedMachine(worker, "w1");
    await appWithStoppedMachine(router2, "r2");
    await appWithStoppedMachine(foreign, "f1", "someone-else");
    expect(routes.lookup(router)?.org).toBe("personal");
    expect(routes.lookup(foreign)?.org).toBe("someone-else");
    await startAt(router, "r1", (await startUpstream("r1", replaysTo(worker))).port);

    const back = await startUpstream("w1");
    const pending = send(port, `${router}.localhost`, { method: "POST", body: Buffer.from("job") });
    await expect.poll(() => routes.lookup(worker)?.starting).toEqual(["w1"]);
    await recordStarted(worker, "w1", back.port);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.json().upstream).toBe("w1");
    expect((res.json().headers as Record<string, string>)["fly-replay-src"]).toMatch(
      /^instance=r1;region=local;/,
    );

    const other = await startUpstream("f1");
    await startAt(foreign, "f1", other.port);
    await startAt(router2, "r2", (await startUpstream("r2", replaysTo(foreign))).port);
    const refused = await send(port, `${router2}.localhost`);
    expect(refused.status).toBe(502);
    expect(refused.json().status).toBe("replay_app_not_found");
    expect(other.hits).toBe(0);
  });
});

describe("load samples", () => {
  it("reports each machine's concurrency while requests are held, then a zero sample, with heartbeats", async () => {
    const app = `busy-${suffix}`;
    await appWithStoppedMachine(app, "b1");
    const held: ServerResponse[] = [];
    const up = await startUpstream("b1", (req, res) => {
      req.resume();
      held.push(res);
    });
    await machines.handle(machineAggregateId(app, "b1"), { type: "StartMachine", nowMs: Date.now() }, meta());
    await recordStarted(app, "b1", up.port);
    await expect.poll(() => routes.lookup(app)?.backends.length).toBe(1);

    const samples = collect<LoadSample>(subjects.load(app));
    const beats = collect<ProxyHeartbeat>(subjects.proxyHeartbeat(proxyId));
    await nc.flush();
    const pending = Array.from({ length: 3 }, () => send(port, `${app}.localhost`));
    await expect.poll(() => held.length).toBe(3);

    await expect
      .poll(() => samples.find((s) => s.concurrency === 3), { timeout: 5_000 })
      .toMatchObject({
        proxy_id: proxyId,
        region,
        app,
        queued: 0,
        machines: [{ machine_id: "b1", region, concurrency: 3 }],
      });
    const busy = beats.find((b) => b.apps.includes(app));
    expect(busy?.machines_seq).toBeGreaterThanOrEqual(routes.machineSeq(app, "b1"));
    expect(samples.at(-1)?.machines_seq).toBeGreaterThanOrEqual(routes.machineSeq(app, "b1"));

    for (const res of held) res.end("ok");
    for (const res of await Promise.all(pending)) expect(res.status).toBe(200);
    const ended = samples.length;
    await expect
      .poll(() => samples.slice(ended).find((s) => s.concurrency === 0), { timeout: 5_000 })
      .toMatchObject({ app, queued: 0, machines: [{ machine_id: "b1", concurrency: 0 }] });
    // Still within the minute after the load: the proxy keeps naming the app in its heartbeat.
    expect(beats.at(-1)?.apps).toContain(app);
  });

  it("counts a cordoned machine's requests until they end, and reports the cordon and the drain at once", async () => {
    const app = `drain-${suffix}`;
    const ownId = `${proxyId}-drain`;
    const drained: string[] = [];
    let publisher: LoadPublisher | undefined;
    const own = createProxy({
      routes,
      region,
      onDrained: (a) => {
        drained.push(a);
        publisher?.soon(a);
      },
      logger: createLogger("proxy-drain-test", { level: "silent" }),
    });
    await new Promise<void>((resolve) => own.server.listen(0, "127.0.0.1", resolve));
    const ownPort = (own.server.address() as AddressInfo).port;
    // No regular round within the test: every sample it sees was asked for with `soon`.
    publisher = LoadPublisher.start({
      nc,
      proxyId: ownId,
      region,
      stats: () => own.stats(),
      intervalMs: 600_000,
    });
    const started = publisher;
    const unwatch = routes.onChange((changed) => started.soon(changed));
    try {
      await appWithStoppedMachine(app, "d1");
      await stoppedMachine(app, "d2");
      const held: ServerResponse[] = [];
      const d1 = await startUpstream("d1", (req, res) => {
        req.resume();
        held.push(res);
      });
      const d2 = await startUpstream("d2");
      const start = async (id: string, upstreamPort: number) => {
        await machines.handle(
          machineAggregateId(app, id),
          { type: "StartMachine", nowMs: Date.now() },
          meta(),
        );
        await recordStarted(app, id, upstreamPort);
      };
      await start("d1", d1.port);
      await expect.poll(() => routes.lookup(app)?.backends.length).toBe(1);
      const samples = collect<LoadSample>(subjects.load(app));
      await nc.flush();
      // Two requests held on d1, then d2 starts.
      const pending = [send(ownPort, `${app}.localhost`), send(ownPort, `${app}.localhost`)];
      await expect.poll(() => held.length).toBe(2);
      await start("d2", d2.port);
      await expect.poll(() => routes.lookup(app)?.backends.length).toBe(2);

      await machines.handle(
        machineAggregateId(app, "d1"),
        { type: "CordonMachine", nowMs: Date.now() },
        meta(),
      );
      await expect.poll(() => routes.lookup(app)?.backends.map((b) => b.machineId)).toEqual(["d2"]);
      const cordonSeq = routes.machinesSeq ?? 0;
      // A request after the cordon goes to d2, and takes d1 out of this proxy's backends.
      expect((await send(ownPort, `${app}.localhost`)).status).toBe(200);
      const onD1 = () =>
        own
          .stats()
          .apps.find((a) => a.app === app)
          ?.backends.find((b) => b.machineId === "d1")?.inFlight;
      expect(onD1()).toBe(2);
      // The cordon was reported at once, d1's requests with it.
      await expect
        .poll(() =>
          samples.find(
            (x) =>
              x.proxy_id === ownId &&
              x.machines_seq >= cordonSeq &&
              x.machines.some((m) => m.machine_id === "d1" && m.concurrency === 2),
          ),
        )
        .toBeDefined();

      const before = samples.length;
      for (const res of held) res.end("ok");
      await Promise.all(pending);
      expect(onD1()).toBeUndefined();
      expect(drained).toContain(app);
      // The drain was reported at once too: a sample with nothing on d1.
      await expect
        .poll(() =>
          samples
            .slice(before)
            .find((x) => x.proxy_id === ownId && !x.machines.some((m) => m.machine_id === "d1")),
        )
        .toBeDefined();
    } finally {
      unwatch();
      publisher.stop();
      await own.close();
    }
  });
});

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { machineAggregateId, machineDecider, machinesStream } from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { startOpsServer } from "@hangar/service";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { AckPolicy } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsumerLag } from "../src/consumer-lag.js";
import { Monitor } from "../src/monitor.js";

let server: NatsServer;
let nc: NatsConnection;
let store: EventStore;

const create = (id: string) => ({
  type: "CreateMachine" as const,
  machineId: id,
  app: "web",
  name: id,
  region: "local",
  instanceId: "i1",
  configJson: "{}",
  skipLaunch: false,
  hostId: "h1",
});
const started = (pid: number) =>
  ({
    type: "RecordStarted",
    hostId: "h1",
    pid,
    privateIp: "127.0.0.1",
    port: 1,
    startTime: 1,
    adopted: false,
  }) as const;

async function run(id: string, commands: object[]) {
  const h = new CommandHandler(store, machinesStream, machineDecider);
  let i = 0;
  for (const c of commands)
    await h.handle(machineAggregateId("web", id), c as never, { commandId: `${id}-${i++}` });
}

async function metric(registry: Registry, name: string) {
  return (await registry.getSingleMetric(name)?.get())?.values ?? [];
}

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, machinesStream);
});
afterAll(async () => {
  await nc?.drain();
  await server?.stop();
});

describe("monitor", () => {
  it("counts machines by state from history, and transitions, latency and exits live", async () => {
    await run("old", [create("old"), started(10)]);
    const registry = new Registry();
    const monitor = await Monitor.start(store, registry);
    try {
      expect(await metric(registry, "hangar_machines")).toContainEqual(
        expect.objectContaining({ value: 1, labels: { app: "web", region: "local", state: "started" } }),
      );
      await run("new", [
        create("new"),
        started(11),
        { type: "RecordExited", exitCode: 3, signal: "", codeUnknown: false, restart: false },
      ]);
      await expect.poll(async () => (await metric(registry, "hangar_machine_exits_total")).length).toBe(1);
      expect(await metric(registry, "hangar_machine_exits_total")).toContainEqual(
        expect.objectContaining({ value: 1, labels: { app: "web", code: "3", requested: "false" } }),
      );
      const states = await metric(registry, "hangar_machines");
      expect(states).toContainEqual(
        expect.objectContaining({ value: 1, labels: { app: "web", region: "local", state: "stopped" } }),
      );
      expect(states).toContainEqual(
        expect.objectContaining({ value: 1, labels: { app: "web", region: "local", state: "started" } }),
      );
      const latency = await metric(registry, "hangar_machine_create_to_started_seconds");
      expect(latency.find((v) => (v as { metricName?: string }).metricName?.endsWith("_count"))?.value).toBe(
        1,
      );
      expect(latency).toContainEqual(
        expect.objectContaining({ labels: expect.objectContaining({ app: "web" }) }),
      );
      expect(await metric(registry, "hangar_machine_starts_total")).toEqual([
        expect.objectContaining({ value: 1, labels: { app: "web", region: "local", result: "started" } }),
      ]);
      const transitions = await metric(registry, "hangar_machine_transitions_total");
      expect(transitions).toContainEqual(
        expect.objectContaining({ labels: { app: "web", from: "started", to: "stopped" } }),
      );
    } finally {
      await monitor.stop();
    }
  });
});

describe("consumer lag", () => {
  it("serves num_pending and num_ack_pending of durable consumers only, by stream and consumer", async () => {
    await run("lagged", [create("lagged"), started(12)]);
    const total = (await store.jsm.streams.info(machinesStream.name)).state.messages;
    await store.jsm.consumers.add(machinesStream.name, {
      durable_name: "lag-probe",
      ack_policy: AckPolicy.Explicit,
    });
    // An ephemeral consumer (a view following the stream) has a random name: it must not show.
    const ephemeral = await store.jsm.consumers.add(machinesStream.name, { ack_policy: AckPolicy.None });
    const registry = new Registry();
    const lag = await ConsumerLag.start(store.jsm, registry, { intervalMs: 60_000 });
    try {
      expect(await metric(registry, "hangar_nats_consumer_pending_messages")).toEqual([
        expect.objectContaining({ value: total, labels: { stream: "MACHINES", consumer: "lag-probe" } }),
      ]);
      const c = await store.js.consumers.get(machinesStream.name, "lag-probe");
      const batch = await c.fetch({ max_messages: 2, expires: 2_000 });
      for await (const _m of batch) {
        // Delivered, not acknowledged.
      }
      await lag.poll();
      expect(await metric(registry, "hangar_nats_consumer_pending_messages")).toEqual([
        expect.objectContaining({ value: total - 2, labels: { stream: "MACHINES", consumer: "lag-probe" } }),
      ]);
      expect(await metric(registry, "hangar_nats_consumer_ack_pending_messages")).toEqual([
        expect.objectContaining({ value: 2, labels: { stream: "MACHINES", consumer: "lag-probe" } }),
      ]);
    } finally {
      await lag.stop();
      await store.jsm.consumers.delete(machinesStream.name, ephemeral.name);
    }
  });
});

describe("the machines' own metrics ([[metrics]])", () => {
  it("scrapes each started machine's metrics port and serves its series at /metrics/apps with app, instance, region and process group", async () => {
    // A machine's metrics endpoint: a real HTTP server on the host-local address the monitor reaches machines on.
    const exposition = [
      "# HELP jobs_done_total Jobs done.",
      "# TYPE jobs_done_total counter",
      'jobs_done_total{queue="mail",app="mine"} 7',
      "# TYPE job_seconds histogram",
      'job_seconds_bucket{le="0.5"} 3',
      'job_seconds_bucket{le="+Inf"} 4',
      "job_seconds_sum 1.5",
      "job_seconds_count 4",
      "",
    ].join("\n");
    let asked = "";
    const app = createServer((req, res) => {
      asked = req.url ?? "";
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(exposition);
    });
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    const port = (app.address() as AddressInfo).port;
    const withMetrics = (path: string | undefined, metricsPort: number) =>
      JSON.stringify({
        metrics: { port: metricsPort, ...(path ? { path } : {}) },
        env: { FLY_PROCESS_GROUP: "worker" },
      });
    const h = new CommandHandler(store, machinesStream, machineDecider);
    const make = async (id: string, configJson: string, start: boolean) => {
      await h.handle(machineAggregateId("web", id), { ...create(id), configJson }, { commandId: `${id}-c` });
      if (start)
        await h.handle(
          machineAggregateId("web", id),
          { ...started(5), privateIpv6: "" },
          { commandId: `${id}-s` },
        );
    };
    await make("scraped", withMetrics("/internal/metrics", port), true);
    await make("stopped-one", withMetrics(undefined, port), false);
    await make("refusing", withMetrics(undefined, 1), true); // nothing listens on port 1
    const monitor = await Monitor.start(store, new Registry(), { appScrapeMs: 60_000 });
    const ops = await startOpsServer({
      port: 0,
      host: "127.0.0.1",
      service: "monitor",
      health: () => ({ ok: true }),
      textRoutes: () => monitor.textRoutes,
    });
    try {
      await monitor.appMetrics.scrapeAll();
      expect(asked).toBe("/internal/metrics");
      const res = await fetch(`http://127.0.0.1:${ops.port}/metrics/apps`);
      expect(res.status).toBe(200);
      const text = await res.text();
      const where = 'app="web",instance="scraped",region="local",process_group="worker"';
      expect(text).toContain(`jobs_done_total{queue="mail",exported_app="mine",${where}} 7`);
      expect(text).toContain(`job_seconds_bucket{le="+Inf",${where}} 4`);
      expect(text).toContain(`job_seconds_count{${where}} 4`);
      expect(text.match(/# TYPE jobs_done_total counter/g)).toHaveLength(1);
      expect(text).toContain(`hangar_app_scrape_up{${where}} 1`);
      expect(text).toContain(
        'hangar_app_scrape_up{app="web",instance="refusing",region="local",process_group="worker"} 0',
      );
      // A stopped machine is not scraped.
      expect(text).not.toContain('instance="stopped-one"');
      // The platform's own /metrics stays apart.
      expect(await (await fetch(`http://127.0.0.1:${ops.port}/metrics`)).text()).not.toContain(
        "jobs_done_total",
      );
    } finally {
      await monitor.stop();
      await ops.close();
      app.close();
    }
  });
});

describe("the machines' own metrics, refused", () => {
  it("never follows a redirect, cuts a body over the cap, and takes no series from a page that is not valid", async () => {
    // A second server the redirect points at: it must never be asked.
    let elsewhereAsked = 0;
    const elsewhere = createServer((_req, res) => {
      elsewhereAsked++;
      res.end("secret_total 1\n");
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, "127.0.0.1", resolve));
    const elsewherePort = (elsewhere.address() as AddressInfo).port;
    const pages: Record<string, (res: import("node:http").ServerResponse) => void> = {
      "/redirect": (res) => {
        res.writeHead(302, { location: `http://127.0.0.1:${elsewherePort}/metrics` });
        res.end();
      },
      // Chunked (no Content-Length), well over the cap.
      "/huge": (res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        for (let i = 0; i < 2_000; i++) res.write(`big_total{i="${i}"} ${i}\n`);
        res.end();
      },
      "/broken": (res) => res.end('ok_total 1\nweird-name{a="b"} 2\n'),
      "/spoof": (res) => res.end("hangar_app_scrape_up 1\n"),
      "/fine": (res) => res.end("fine_total 3\n"),
    };
    const app = createServer((req, res) => {
      const page = pages[req.url ?? ""];
      if (page) page(res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    const port = (app.address() as AddressInfo).port;
    const h = new CommandHandler(store, machinesStream, machineDecider);
    for (const path of Object.keys(pages)) {
      const id = `bad${path.replace("/", "-")}`;
      const configJson = JSON.stringify({ metrics: { port, path } });
      await h.handle(
        machineAggregateId("bad", id),
        { ...create(id), app: "bad", configJson },
        { commandId: `${id}-c` },
      );
      await h.handle(
        machineAggregateId("bad", id),
        { ...started(5), privateIpv6: "" },
        { commandId: `${id}-s` },
      );
    }
    const monitor = await Monitor.start(store, new Registry(), {
      appScrapeMs: 60_000,
      appScrapeMaxBytes: 10_000,
    });
    try {
      await monitor.appMetrics.scrapeAll();
      const byInstance = new Map(
        monitor.appMetrics
          .targets()
          .filter((t) => t.app === "bad")
          .map((t) => [t.instance, t]),
      );
      expect(byInstance.get("bad-redirect")).toMatchObject({
        up: false,
        error: "HTTP 302: redirects are not followed",
      });
      expect(elsewhereAsked).toBe(0);
      expect(byInstance.get("bad-huge")).toMatchObject({ up: false, error: "body is over 10000 bytes" });
      expect(byInstance.get("bad-broken")).toMatchObject({
        up: false,
        error: 'metric name "weird-name" is not valid',
      });
      expect(byInstance.get("bad-spoof")).toMatchObject({
        up: false,
        error: "metric name hangar_app_scrape_up is the monitor's own",
      });
      expect(byInstance.get("bad-fine")?.up).toBe(true);
      const text = monitor.appMetrics.render();
      expect(text).toContain('fine_total{app="bad",instance="bad-fine"');
      expect(text).not.toMatch(/ok_total|big_total|secret_total/);
      expect(text.match(/# TYPE hangar_app_scrape_up gauge/g)).toHaveLength(1);
    } finally {
      await monitor.stop();
      app.close();
      elsewhere.close();
    }
  });
});

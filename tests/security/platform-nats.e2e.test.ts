// Acceptance 3 of issue 10, against a whole platform's NATS (services as real processes, each
// connected as its own user): what a stolen credential of one service cannot do. After each attempt
// the stream it aimed at has not moved, and at the end the platform still creates, serves and wakes
// machines (the proxy's wake goes through the gateway's cmd.machines.wake).
import { hostsStream, machinesStream } from "@hangar/domain";
import { jetstreamManager } from "@nats-io/jetstream";
import { AuthorizationError, connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { scaledHelloConfig, startTestPlatform, type TestPlatform, viaProxy } from "../platform/harness.js";
import { collectViolations, Prober } from "./probe.js";

const APP = "locked";
const OTHER_HOST = "local-2";

let p: TestPlatform;
let operator: NatsConnection;
let machineId: string;

beforeAll(async () => {
  p = await startTestPlatform();
  operator = await p.connectNats();
  expect((await p.api.call("POST", "/apps", { app_name: APP, org_slug: "personal" })).status).toBe(201);
  const m = await p.api.ok<{ id: string }>("POST", `/apps/${APP}/machines`, {
    config: scaledHelloConfig({ autostop: "stop" }),
  });
  machineId = m.id;
  await waitState(machineId, "started");
}, 180_000);

afterAll(async () => {
  await operator?.close();
  await p?.close();
});

async function waitState(id: string, state: string): Promise<void> {
  const res = await p.api.call("GET", `/apps/${APP}/machines/${id}/wait?state=${state}&timeout=30`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

async function lastSeq(stream: string): Promise<number> {
  return (await (await jetstreamManager(operator)).streams.info(stream)).state.last_seq;
}

/** Runs `attempt` as `user` and returns the permission violations nats.js reported for it. */
async function as(user: string, attempt: (probe: Prober) => Promise<void>) {
  const probe = await Prober.open(p.nats.url, p.natsCreds, user);
  const violations = collectViolations(probe.nc);
  try {
    await attempt(probe);
    await probe.nc.flush();
    return violations.map((v) => ({ operation: v.operation, subject: v.subject }));
  } finally {
    await probe.close();
  }
}

it("refuses a connection without credentials", async () => {
  await expect(connect({ servers: p.nats.url, reconnect: false })).rejects.toBeInstanceOf(AuthorizationError);
});

it("refuses the proxy's user appending to a machine's event subject", async () => {
  const subject = `ev.machine.${APP}.${machineId}`;
  const before = await lastSeq(machinesStream.name);
  const violations = await as("proxy", async (probe) => {
    expect(await probe.canPublish(subject)).toBe(false);
  });
  expect(violations).toContainEqual({ operation: "publish", subject });
  expect(await lastSeq(machinesStream.name)).toBe(before);
});

it("refuses host agent A the command, heartbeat and event subjects of host B", async () => {
  const a = `host-agent-${p.hostId}`;
  const before = await lastSeq(hostsStream.name);
  const b = {
    command: `cmd.host.${OTHER_HOST}.signal`,
    heartbeat: `hosts.heartbeat.${OTHER_HOST}`,
    events: `ev.host.${OTHER_HOST}`,
  };
  const violations = await as(a, async (probe) => {
    // Its own heartbeat goes through: the refusals below are about whose subject it is.
    expect(await probe.canPublish(`hosts.heartbeat.${p.hostId}`)).toBe(true);
    expect(await probe.canPublish(b.heartbeat)).toBe(false);
    expect(await probe.canPublish(b.events)).toBe(false);
    expect(await probe.canPublish(b.command)).toBe(false);
    // Nor may it answer B's commands in B's place.
    expect(await probe.canSubscribe(b.command)).toBe(false);
  });
  expect(violations).toEqual(
    expect.arrayContaining([
      { operation: "publish", subject: b.heartbeat },
      { operation: "publish", subject: b.events },
      { operation: "publish", subject: b.command },
      { operation: "subscription", subject: b.command },
    ]),
  );
  expect(await lastSeq(hostsStream.name)).toBe(before);
});

it("refuses one service's user a subscription to another user's reply inbox", async () => {
  const before = await lastSeq(machinesStream.name);
  const violations = await as("proxy", async (probe) => {
    expect(await probe.canSubscribe("_INBOX_proxy.mine")).toBe(true);
    expect(await probe.canSubscribe("_INBOX_gateway.>")).toBe(false);
    expect(await probe.canSubscribe("_INBOX.>")).toBe(false);
  });
  expect(violations).toEqual(
    expect.arrayContaining([
      { operation: "subscription", subject: "_INBOX_gateway.>" },
      { operation: "subscription", subject: "_INBOX.>" },
    ]),
  );
  expect(await lastSeq(machinesStream.name)).toBe(before);
});

it("keeps working: a machine create succeeds, and the proxy wakes a stopped machine through the gateway", async () => {
  const created = await p.api.ok<{ id: string }>("POST", `/apps/${APP}/machines`, {
    config: scaledHelloConfig({ autostop: "stop" }),
  });
  await waitState(created.id, "started");
  for (const id of [machineId, created.id]) {
    expect((await p.api.call("POST", `/apps/${APP}/machines/${id}/stop`, {})).status).toBe(200);
    await waitState(id, "stopped");
  }
  // Nothing started: the proxy holds the request and sends cmd.machines.wake to the gateway.
  const res = await viaProxy(p, APP, "/hi");
  expect(res.status, res.body).toBe(200);
});

it("ran every service within its permissions: no service was refused anything", async () => {
  for (const [name, service] of Object.entries(p.services)) {
    const metrics = await (await fetch(service.healthUrl.replace(/\/health$/, "/metrics"))).text();
    // The counter is registered (so the check below looks at the right thing), and never went up.
    expect(metrics, name).toContain("# TYPE hangar_nats_permission_violations_total counter");
    const refused = metrics
      .split("\n")
      .filter((l) => l.startsWith("hangar_nats_permission_violations_total{") && !l.endsWith(" 0"));
    expect(refused, name).toEqual([]);
  }
});

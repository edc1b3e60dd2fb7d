// A service's permission violations, reported by type: a real nats-server with the generated users,
// the proxy's user publishing where it may not and subscribing where it may not.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { natsAuthOptions } from "../src/nats.js";
import { type NatsCredentials, writeNatsCredentials } from "../src/nats-credentials.js";
import { natsUsers } from "../src/nats-permissions.js";
import { reportPermissionViolations } from "../src/nats-violations.js";

let dir: string;
let creds: NatsCredentials;
let server: NatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hangar-nats-violations-"));
  creds = await writeNatsCredentials(dir, natsUsers(["h1"]));
  server = await startNatsServer({ authorization: creds.authorization });
  nc = await connect({
    servers: server.url,
    ...natsAuthOptions({ credsFile: creds.credsFile("proxy"), user: "proxy" }),
  });
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("logs and counts what nats-server refused, and nothing it allowed", async () => {
  const logged: Record<string, unknown>[] = [];
  const registry = new Registry();
  reportPermissionViolations(nc, { error: (obj) => logged.push(obj) }, registry);
  nc.publish("load.app1", "allowed");
  nc.publish("ev.machine.app1.m1", "refused");
  nc.subscribe("_INBOX_gateway.>");
  // The server answers in order: once both refusals are in, so is everything before them.
  while (logged.length < 2) await nc.flush();
  expect(logged).toEqual([
    { operation: "publish", subject: "ev.machine.app1.m1" },
    { operation: "subscription", subject: "_INBOX_gateway.>" },
  ]);
  const counted = (await registry.getSingleMetric("hangar_nats_permission_violations_total")?.get())?.values;
  expect(counted?.map((v) => [v.labels.operation, v.value]).sort()).toEqual([
    ["publish", 1],
    ["subscription", 1],
  ]);
});

// The host agent's read grant on SECRETS covers the apps' secrets only: a real nats-server with the
// generated users, where the agent reads an app's sealed secrets as MachineSecrets does (a consumer
// filtered to ev.secret.app.>, a direct get of an app's last message) and is refused an org's
// (registry credentials, which no machine gets), by consumer filter, by subject and by sequence.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { AckPolicy, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { natsAuthOptions } from "../src/nats.js";
import { type NatsCredentials, writeNatsCredentials } from "../src/nats-credentials.js";
import { natsUsers, OPERATOR_USER } from "../src/nats-permissions.js";

let dir: string;
let creds: NatsCredentials;
let server: NatsServer;
const conns: NatsConnection[] = [];

async function managerOf(user: string): Promise<JetStreamManager> {
  const nc = await connect({
    servers: server.url,
    ...natsAuthOptions({ credsFile: creds.credsFile(user), user }),
  });
  conns.push(nc);
  return jetstreamManager(nc, { timeout: 2_000 });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hangar-secrets-grant-"));
  creds = await writeNatsCredentials(dir, natsUsers(["h1"]));
  server = await startNatsServer({ authorization: creds.authorization });
  const operator = await managerOf(OPERATOR_USER);
  await operator.streams.add({ name: "SECRETS", subjects: ["ev.secret.>"], allow_direct: true });
  const js = operator.jetstream();
  await js.publish("ev.secret.app.a1", "app sealed");
  await js.publish("ev.secret.org.o1", "org sealed");
});
afterAll(async () => {
  for (const nc of conns) await nc.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("lets a host agent read the apps' secrets and refuses it the orgs'", async () => {
  const agent = await managerOf("host-agent-h1");
  const app = await agent.direct.getMessage("SECRETS", { last_by_subj: "ev.secret.app.a1" });
  expect(app?.string()).toBe("app sealed");
  const consumer = { ack_policy: AckPolicy.None, mem_storage: true, inactive_threshold: 30_000_000_000 };
  await expect(
    agent.consumers.add("SECRETS", { ...consumer, name: "apps", filter_subject: "ev.secret.app.>" }),
  ).resolves.toMatchObject({ num_pending: 1 });

  await expect(agent.direct.getMessage("SECRETS", { last_by_subj: "ev.secret.org.o1" })).rejects.toThrow();
  // By sequence (the body form), any subject could be read: refused outright.
  await expect(agent.direct.getMessage("SECRETS", { seq: 2 })).rejects.toThrow();
  await expect(
    agent.consumers.add("SECRETS", { ...consumer, name: "orgs", filter_subject: "ev.secret.org.>" }),
  ).rejects.toThrow();
  await expect(
    agent.consumers.add("SECRETS", { ...consumer, name: "all", filter_subject: "ev.secret.>" }),
  ).rejects.toThrow();
  await expect(agent.consumers.add("SECRETS", { ...consumer, name: "unfiltered" })).rejects.toThrow();
});

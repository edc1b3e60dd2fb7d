// The read grants on SECRETS, on a real nats-server with the generated users: a host agent reads the
// apps' sealed secrets as AppSecrets does (a consumer filtered to ev.secret.app.>, a direct get
// of an app's last message) and the orgs' registry credentials as OrgSecrets does (ev.secret.org.>);
// the builder reads both too (registry credentials, and app secrets for RUN --mount=type=secret).
// Neither may read by sequence or without a filter.
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

const consumer = { ack_policy: AckPolicy.None, mem_storage: true, inactive_threshold: 30_000_000_000 };

it("lets a host agent read the apps' and the orgs' secrets, only by subject", async () => {
  const agent = await managerOf("host-agent-h1");
  const app = await agent.direct.getMessage("SECRETS", { last_by_subj: "ev.secret.app.a1" });
  expect(app?.string()).toBe("app sealed");
  await expect(
    agent.consumers.add("SECRETS", { ...consumer, name: "apps", filter_subject: "ev.secret.app.>" }),
  ).resolves.toMatchObject({ num_pending: 1 });
  const org = await agent.direct.getMessage("SECRETS", { last_by_subj: "ev.secret.org.o1" });
  expect(org?.string()).toBe("org sealed");
  await expect(
    agent.consumers.add("SECRETS", { ...consumer, name: "orgs", filter_subject: "ev.secret.org.>" }),
  ).resolves.toMatchObject({ num_pending: 1 });
  // By sequence (the body form), any subject could be read: refused outright.
  await expect(agent.direct.getMessage("SECRETS", { seq: 2 })).rejects.toThrow();
  await expect(
    agent.consumers.add("SECRETS", { ...consumer, name: "all", filter_subject: "ev.secret.>" }),
  ).rejects.toThrow();
  await expect(agent.consumers.add("SECRETS", { ...consumer, name: "unfiltered" })).rejects.toThrow();
});

it("lets the builder read the orgs' registry credentials and the apps' secrets, only by subject", async () => {
  const builder = await managerOf("builder");
  const org = await builder.direct.getMessage("SECRETS", { last_by_subj: "ev.secret.org.o1" });
  expect(org?.string()).toBe("org sealed");
  await expect(
    builder.consumers.add("SECRETS", { ...consumer, name: "b-orgs", filter_subject: "ev.secret.org.>" }),
  ).resolves.toMatchObject({ num_pending: 1 });
  const app = await builder.direct.getMessage("SECRETS", { last_by_subj: "ev.secret.app.a1" });
  expect(app?.string()).toBe("app sealed");
  await expect(
    builder.consumers.add("SECRETS", { ...consumer, name: "b-apps", filter_subject: "ev.secret.app.>" }),
  ).resolves.toMatchObject({ num_pending: 1 });
  await expect(builder.direct.getMessage("SECRETS", { seq: 1 })).rejects.toThrow();
  await expect(
    builder.consumers.add("SECRETS", { ...consumer, name: "b-all", filter_subject: "ev.secret.>" }),
  ).rejects.toThrow();
});

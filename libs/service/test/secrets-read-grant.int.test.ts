// The read grants on SECRETS, on a real nats-server with the generated users: a host agent reads the
// apps' sealed secrets (AppSecrets) and the orgs' registry credentials (OrgSecrets), the builder both
// too (registry credentials, and app secrets for RUN --mount=type=secret): that is the whole stream,
// so they read it as whole-stream readers, the leader's message get included (WHOLE_SECRETS in
// nats-permissions.ts). The proxy reads the apps' scope only, by subject.
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

it.each(["host-agent-h1", "builder"])(
  "lets %s read the whole stream: the apps' and the orgs' secrets, by subject, by sequence and from the leader",
  async (user) => {
    const reader = await managerOf(user);
    const app = await reader.direct.getMessage("SECRETS", { last_by_subj: "ev.secret.app.a1" });
    expect(app?.string()).toBe("app sealed");
    const org = await reader.direct.getMessage("SECRETS", { last_by_subj: "ev.secret.org.o1" });
    expect(org?.string()).toBe("org sealed");
    // ev.secret.<scope>.<name> is every subject the stream holds: reading by sequence, or through the
    // leader's message get (what getStoredMessage asks on a replicated stream), reveals nothing more.
    expect((await reader.direct.getMessage("SECRETS", { seq: 2 }))?.string()).toBe("org sealed");
    expect((await reader.streams.getMessage("SECRETS", { last_by_subj: "ev.secret.app.a1" }))?.string()).toBe(
      "app sealed",
    );
    await expect(
      reader.consumers.add("SECRETS", {
        ...consumer,
        name: `${user}-apps`,
        filter_subject: "ev.secret.app.>",
      }),
    ).resolves.toMatchObject({ num_pending: 1 });
    await expect(
      reader.consumers.add("SECRETS", { ...consumer, name: `${user}-all`, filter_subject: "ev.secret.>" }),
    ).resolves.toMatchObject({ num_pending: 2 });
  },
);

it("keeps the proxy to the apps' secrets, by subject only", async () => {
  const proxy = await managerOf("proxy");
  const app = await proxy.direct.getMessage("SECRETS", { last_by_subj: "ev.secret.app.a1" });
  expect(app?.string()).toBe("app sealed");
  await expect(
    proxy.consumers.add("SECRETS", { ...consumer, name: "p-apps", filter_subject: "ev.secret.app.>" }),
  ).resolves.toMatchObject({ num_pending: 1 });
  await expect(proxy.direct.getMessage("SECRETS", { last_by_subj: "ev.secret.org.o1" })).rejects.toThrow();
  // By sequence (the body form) or from the leader, any subject could be read: refused outright.
  await expect(proxy.direct.getMessage("SECRETS", { seq: 2 })).rejects.toThrow();
  await expect(proxy.streams.getMessage("SECRETS", { seq: 2 })).rejects.toThrow();
  await expect(
    proxy.consumers.add("SECRETS", { ...consumer, name: "p-orgs", filter_subject: "ev.secret.org.>" }),
  ).rejects.toThrow();
  await expect(
    proxy.consumers.add("SECRETS", { ...consumer, name: "p-all", filter_subject: "ev.secret.>" }),
  ).rejects.toThrow();
  await expect(proxy.consumers.add("SECRETS", { ...consumer, name: "p-unfiltered" })).rejects.toThrow();
});

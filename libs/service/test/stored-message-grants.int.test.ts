// getStoredMessage with the generated users on a 3-node cluster, where the stream is replicated: a
// reader of a whole stream (the gateway on APPS, a host agent on SECRETS) reads through the leader's
// message get, which its grant allows, and sees what was just acknowledged even when connected to a
// follower; a reader limited to some subjects (the proxy on SECRETS) is refused that get once, and
// reads with direct gets from then on; told its grants (limitLeaderReads, as run-service does), it
// never asks.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getStoredMessage, limitLeaderReads } from "@hangar/eventstore";
import { type NatsCluster, startNatsCluster } from "@hangar/testkit";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, PermissionViolationError } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { natsAuthOptions } from "../src/nats.js";
import { type NatsCredentials, writeNatsCredentials } from "../src/nats-credentials.js";
import { natsUserOf, natsUsers, OPERATOR_USER, permissionsOf } from "../src/nats-permissions.js";

let dir: string;
let creds: NatsCredentials;
let cluster: NatsCluster;
const conns: NatsConnection[] = [];

async function connectAs(user: string, server: number): Promise<NatsConnection> {
  const nc = await connect({
    servers: cluster.urls[server],
    ...natsAuthOptions({ credsFile: creds.credsFile(user), user }),
  });
  conns.push(nc);
  return nc;
}

/** Index of a node that does not lead `stream`. */
async function followerOf(jsm: JetStreamManager, stream: string): Promise<number> {
  const leader = (await jsm.streams.info(stream)).cluster?.leader;
  expect(leader).toMatch(/^hangar-\d$/);
  return cluster.servers.findIndex((_, i) => `hangar-${i + 1}` !== leader);
}

/** The permission violations a connection is told of, as they come. */
function refusals(nc: NatsConnection): PermissionViolationError[] {
  const seen: PermissionViolationError[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && s.error instanceof PermissionViolationError) seen.push(s.error);
    }
  })();
  return seen;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hangar-stored-message-"));
  creds = await writeNatsCredentials(dir, natsUsers(["h1"]));
  cluster = await startNatsCluster({ authorization: creds.authorization });
  const operator = await jetstreamManager(await connectAs(OPERATOR_USER, 0));
  for (const [name, subjects] of [
    ["APPS", ["ev.app.*"]],
    ["SECRETS", ["ev.secret.>"]],
  ] as const) {
    await operator.streams.add({ name, subjects: [...subjects], allow_direct: true, num_replicas: 3 });
  }
}, 120_000);
afterAll(async () => {
  for (const nc of conns) await nc.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it.each([
  ["gateway", "APPS", "ev.app.a1"],
  // A machine started right after `secrets set` opens the values just set.
  ["host-agent-h1", "SECRETS", "ev.secret.app.fresh"],
])(
  "gives a whole-stream reader (%s on %s) on a follower every acknowledged message at once",
  async (user, stream, subject) => {
    const operator = await jetstreamManager(conns[0] as NatsConnection);
    const reader = await connectAs(user, await followerOf(operator, stream));
    const refused = refusals(reader);
    const jsm = await jetstreamManager(reader);
    const js = operator.jetstream();
    const first = await js.publish(subject, "v0");
    const stale: number[] = [];
    for (let i = 1; i <= 200; i++) {
      const ack = await js.publish(subject, `v${i}`);
      const last = await getStoredMessage(jsm, stream, { last_by_subj: subject });
      if (last?.seq !== ack.seq) stale.push(i);
    }
    expect(stale).toEqual([]);
    expect((await getStoredMessage(jsm, stream, { seq: first.seq }))?.string()).toBe("v0");
    // Read through the leader's get, which its grant allows: nothing was refused.
    expect(refused).toEqual([]);
  },
  60_000,
);

it("lets a subject-limited reader (the proxy on SECRETS) read with direct gets after one refusal", async () => {
  const operator = await jetstreamManager(conns[0] as NatsConnection);
  await operator.jetstream().publish("ev.secret.app.a1", "sealed 1");
  const second = await operator.jetstream().publish("ev.secret.app.a1", "sealed 2");
  const agent = await connectAs("proxy", await followerOf(operator, "SECRETS"));
  const refused = refusals(agent);
  const jsm = await jetstreamManager(agent);
  for (let i = 0; i < 3; i++) {
    // A follower may not have applied the second message yet: wait for it, as a reader of direct
    // gets must.
    let last = await getStoredMessage(jsm, "SECRETS", { last_by_subj: "ev.secret.app.a1" });
    while (last?.seq !== second.seq) {
      await new Promise((r) => setTimeout(r, 20));
      last = await getStoredMessage(jsm, "SECRETS", { last_by_subj: "ev.secret.app.a1" });
    }
    expect(last.string()).toBe("sealed 2");
  }
  expect(refused.map((e) => e.subject)).toEqual(["$JS.API.STREAM.MSG.GET.SECRETS"]);
  // Its grant still keeps it to its subjects.
  await expect(getStoredMessage(jsm, "SECRETS", { seq: 1 })).rejects.toThrow();
}, 60_000);

it("asks nothing it may not ask once told its grants (what run-service does for every service)", async () => {
  const operator = await jetstreamManager(conns[0] as NatsConnection);
  const last = await operator.jetstream().publish("ev.secret.app.a2", "sealed");
  const agent = await connectAs("proxy", await followerOf(operator, "SECRETS"));
  const refused = refusals(agent);
  const jsm = await jetstreamManager(agent);
  const publish = new Set(
    permissionsOf(natsUserOf("proxy") as NonNullable<ReturnType<typeof natsUserOf>>).publish,
  );
  limitLeaderReads(jsm, (stream) => publish.has(`$JS.API.STREAM.MSG.GET.${stream}`));
  let got = await getStoredMessage(jsm, "SECRETS", { last_by_subj: "ev.secret.app.a2" });
  while (got?.seq !== last.seq) {
    await new Promise((r) => setTimeout(r, 20));
    got = await getStoredMessage(jsm, "SECRETS", { last_by_subj: "ev.secret.app.a2" });
  }
  expect(got.string()).toBe("sealed");
  expect(refused).toEqual([]);
}, 60_000);

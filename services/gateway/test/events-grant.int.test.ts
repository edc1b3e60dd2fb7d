// The gateway's grant on EVENTS, on a real nats-server with the generated users: it creates EVENTS
// with its sources (the server reads them itself: the gateway needs no grant on a stream it only
// sources, such as PGCLUSTERS), adds a source an older EVENTS lacks, and follows it with the feed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pgclustersStream } from "@hangar/domain";
import { EventFeed, ensureEventsStream, eventsStreamConfig, type FeedEvent } from "@hangar/event-feed";
import { encodeBatch } from "@hangar/eventstore";
import {
  type NatsCredentials,
  natsAuthOptions,
  natsUsers,
  OPERATOR_USER,
  writeNatsCredentials,
} from "@hangar/service";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";

let dir: string;
let creds: NatsCredentials;
let server: NatsServer;
const conns: NatsConnection[] = [];

async function connectAs(user: string): Promise<NatsConnection> {
  const nc = await connect({
    servers: server.url,
    ...natsAuthOptions({ credsFile: creds.credsFile(user), user }),
  });
  conns.push(nc);
  return nc;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hangar-events-grant-"));
  creds = await writeNatsCredentials(dir, natsUsers([]));
  server = await startNatsServer({ authorization: creds.authorization });
});
afterAll(async () => {
  for (const nc of conns) await nc.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("lets the gateway create EVENTS, add a missing source, and follow what the sources get", async () => {
  const operator = await jetstreamManager(await connectAs(OPERATOR_USER));
  // An EVENTS of an older version, without PGCLUSTERS among its sources.
  const old = eventsStreamConfig();
  await operator.streams.add({ ...old, sources: (old.sources ?? []).filter((s) => s.name !== "PGCLUSTERS") });
  await operator.streams.add({ name: "PGCLUSTERS", subjects: ["ev.pgcluster.>"], allow_direct: true });
  const gatewayNc = await connectAs("gateway");
  const gateway = await jetstreamManager(gatewayNc, { timeout: 2_000 });
  await ensureEventsStream(gateway);
  expect((await gateway.streams.info("EVENTS")).config.sources?.map((s) => s.name)).toContain("PGCLUSTERS");
  // Another user may not update EVENTS.
  const proxy = await jetstreamManager(await connectAs("proxy"), { timeout: 2_000 });
  await expect(proxy.streams.update("EVENTS", { ...old, description: "changed" })).rejects.toThrow();

  const feed = await EventFeed.start({
    nc: gatewayNc,
    jsm: gateway,
    resolver: { orgOfApp: () => undefined },
  });
  const got: FeedEvent[] = [];
  feed.subscribe({ filter: {}, onEvent: (e) => got.push(e) });
  await operator
    .jetstream()
    .publish(
      "ev.pgcluster.db1",
      encodeBatch(
        pgclustersStream,
        "db1",
        [{ type: "PgClusterCreateRequested", data: { cluster: "db1", org: "acme" } as never }],
        { commandId: "c1" },
      ),
    );
  const deadline = Date.now() + 15_000;
  while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(got.map((e) => [e.event.type, e.event.org])).toEqual([["pgcluster.create_requested", "acme"]]);
  await feed.stop();
});

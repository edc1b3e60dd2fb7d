// The gateway's grant on EVENTS, on a real nats-server with the generated users: it creates EVENTS
// with its sources (the server reads them itself: the gateway needs no grant on a stream it only
// sources, such as PGCLUSTERS), adds a source an older EVENTS lacks, and follows it with the feed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pgclustersStream } from "@hangar/domain";
import {
  EventFeed,
  EventsRelay,
  ensureEventsStream,
  eventsStreamConfig,
  type FeedEvent,
} from "@hangar/event-feed";
import { encodeBatch, eventTypesHeaders } from "@hangar/eventstore";
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

it("lets the gateway bring an EVENTS of an earlier Hangar to its subjects, and relay and follow what the aggregate streams get", async () => {
  const operator = await jetstreamManager(await connectAs(OPERATOR_USER));
  // EVENTS as an earlier Hangar made it: sourcing the aggregate streams, no subjects of its own.
  const current = eventsStreamConfig();
  await operator.streams.add({ ...current, subjects: [], sources: [{ name: "MACHINES" }] });
  await operator.streams.add({ name: "PGCLUSTERS", subjects: ["ev.pgcluster.>"], allow_direct: true });
  const gatewayNc = await connectAs("gateway");
  const gateway = await jetstreamManager(gatewayNc, { timeout: 2_000 });
  await ensureEventsStream(gateway);
  const config = (await gateway.streams.info("EVENTS")).config;
  expect(config.sources ?? []).toEqual([]);
  expect(config.subjects).toEqual(["events.ev.>"]);
  // Another user may not update EVENTS, nor append to it.
  const proxyNc = await connectAs("proxy");
  const proxy = await jetstreamManager(proxyNc, { timeout: 2_000 });
  await expect(proxy.streams.update("EVENTS", { ...current, description: "changed" })).rejects.toThrow();
  await expect(
    proxy.jetstream().publish("events.ev.pgcluster.db1", "forged", { timeout: 1_000 }),
  ).rejects.toThrow();

  const relay = await EventsRelay.start(gatewayNc, gateway);
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
      { headers: eventTypesHeaders([{ type: "PgClusterCreateRequested" }]) },
    );
  const deadline = Date.now() + 15_000;
  while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(got.map((e) => [e.event.type, e.event.org])).toEqual([["pgcluster.create_requested", "acme"]]);
  await feed.stop();
  await relay.stop();
});

import {
  appsStream,
  auditStream,
  buildsStream,
  hostsStream,
  machinesStream,
  orgsStream,
  pgclustersStream,
  releasesStream,
  scalingStream,
  secretsStream,
  volumesStream,
  webhooksStream,
} from "@hangar/domain";
import { describe, expect, it } from "vitest";
import {
  appendsTo,
  hostAgentUser,
  type NatsUserSpec,
  natsUserOf,
  natsUsers,
  permissionsOf,
  SERVICE_USERS,
  SUBSCRIBER_USER,
  updatesStream,
} from "./nats-permissions.js";

const streams = new Map(
  [
    appsStream,
    machinesStream,
    hostsStream,
    buildsStream,
    releasesStream,
    scalingStream,
    auditStream,
    secretsStream,
    orgsStream,
    volumesStream,
    pgclustersStream,
    webhooksStream,
  ].map((s) => [s.name, s.subjectPrefix]),
);
// EVENTS (the event feed) holds copies of the aggregate streams under events.<their subject>.
streams.set("EVENTS", "events.ev");

describe("the NATS permission table", () => {
  it.each(natsUsers(["h1"]).map((u) => [u.user, u] as const))(
    "%s names real streams and their subjects",
    (_n, u) => {
      for (const grant of u.streams) {
        const prefix = streams.get(grant.stream);
        expect(prefix, grant.stream).toBeDefined();
        for (const subject of grant.append) expect(subject.startsWith(`${prefix}.`), subject).toBe(true);
      }
    },
  );

  it("gives every user its own reply inbox and nobody else's", () => {
    for (const u of natsUsers(["h1", "h2"])) {
      const inboxes = permissionsOf(u).subscribe.filter((s) => s.startsWith("_INBOX"));
      expect(inboxes).toEqual([`_INBOX_${u.user}.>`]);
    }
  });

  it("lets a host agent use only its own host's subjects", () => {
    const p = permissionsOf(hostAgentUser("h1"));
    expect(p.publish).toContain("ev.host.h1");
    expect(p.publish).toContain("hosts.heartbeat.h1");
    expect(p.subscribe).toContain("cmd.host.h1.*");
    expect([...p.publish, ...p.subscribe].filter((s) => /\bh2\b|ev\.host\.\*|heartbeat\.\*/.test(s))).toEqual(
      [],
    );
  });

  it("refuses a host id that is not one subject token", () => {
    expect(() => hostAgentUser("a.b")).toThrow(/invalid host id/);
    expect(() => hostAgentUser("*")).toThrow(/invalid host id/);
  });

  it("lets only a stream's writers (and the gateway, EVENTS) update it; nobody deletes or purges an aggregate stream", () => {
    for (const u of natsUsers(["h1"])) {
      const publish = permissionsOf(u).publish;
      for (const name of streams.keys()) {
        expect(publish.includes(`$JS.API.STREAM.UPDATE.${name}`), `${u.user} updates ${name}`).toBe(
          updatesStream(u, name),
        );
        expect(publish.some((s) => s.startsWith(`$JS.API.STREAM.DELETE.${name}`))).toBe(false);
        expect(publish.some((s) => s.startsWith(`$JS.API.STREAM.PURGE.${name}`))).toBe(false);
      }
      // No wildcard reaches the JetStream API beyond what the table spells out.
      expect(publish.filter((s) => /^\$JS\.API\.(\*|>|STREAM\.\*|STREAM\.>)/.test(s))).toEqual([]);
    }
    expect(appendsTo(natsUserOf("monitor") ?? hostAgentUser("x"), "MACHINES")).toBe(false);
    expect(appendsTo(natsUserOf("host-agent", "h1") ?? hostAgentUser("x"), "MACHINES")).toBe(true);
    expect(natsUserOf("not-a-service")).toBeUndefined();
  });

  it("lets only the monitor list streams and consumers (its lag metrics), and read no message by it", () => {
    const listing = natsUsers(["h1"]).filter((u) =>
      permissionsOf(u).publish.includes("$JS.API.CONSUMER.LIST.*"),
    );
    expect(listing.map((u) => u.user)).toEqual(["monitor"]);
    const p = permissionsOf(natsUserOf("monitor") ?? hostAgentUser("x"));
    expect(p.publish).toContain("$JS.API.STREAM.NAMES");
    expect(p.publish.filter((s) => s.startsWith("$JS.API.CONSUMER.MSG.NEXT"))).toEqual([]);
  });

  it("lets the subscriber read EVENTS only, with durables of its own and never a service's", () => {
    const subscriber = natsUserOf(SUBSCRIBER_USER) ?? hostAgentUser("x");
    const projector: NatsUserSpec = {
      ...subscriber,
      user: "projector",
      streams: [{ stream: "EVENTS", read: true, append: [], durables: ["projector"] }],
    };
    const p = permissionsOf(subscriber, [...SERVICE_USERS, projector]);
    // Nothing but EVENTS' info and its consumers: no stream created, no event published.
    expect(p.publish.filter((s) => !/^\$JS\.(API\.[A-Z.]+|ACK|FC)\.EVENTS\b/.test(s))).toEqual([
      "$JS.API.INFO",
    ]);
    expect(p.publish).not.toContain("$JS.API.STREAM.CREATE.EVENTS");
    expect(p.publish).toContain("$JS.API.CONSUMER.MSG.NEXT.EVENTS.*");
    expect(p.subscribe).toEqual(["_INBOX_subscriber.>"]);
    expect(p.denyPublish).toContain("$JS.API.CONSUMER.MSG.NEXT.EVENTS.projector");
    expect(p.denyPublish).toContain("$JS.ACK.EVENTS.projector.>");
    // Every durable the table gives a service on EVENTS is denied to the subscriber.
    const theirs = SERVICE_USERS.flatMap((u) => u.streams.filter((g) => g.stream === "EVENTS")).flatMap(
      (g) => g.durables ?? [],
    );
    const denied = permissionsOf(subscriber).denyPublish;
    for (const name of theirs) expect(denied).toContain(`$JS.API.CONSUMER.DELETE.EVENTS.${name}`);
    // Nobody else is denied anything: only an ownDurables grant needs it.
    for (const u of natsUsers(["h1"]).filter((u) => u.user !== SUBSCRIBER_USER))
      expect(permissionsOf(u).denyPublish, u.user).toEqual([]);
  });

  it("gives allow_responses only to users that serve commands", () => {
    const serving = natsUsers(["h1"]).filter((u) => permissionsOf(u).allowResponses);
    expect(serving.map((u) => u.user).sort()).toEqual([
      "gateway",
      "host-agent-h1",
      "placement",
      "postgres-manager",
      "volume",
      "webhooks",
    ]);
  });

  it("lets only the gateway ask the webhooks service, and only it record webhooks and pull its feed consumer", () => {
    const users = natsUsers(["h1"]);
    const asking = users.filter((u) => permissionsOf(u).publish.some((s) => s.startsWith("cmd.webhooks.")));
    expect(asking.map((u) => u.user)).toEqual(["gateway"]);
    expect(users.filter((u) => appendsTo(u, "WEBHOOKS")).map((u) => u.user)).toEqual(["webhooks"]);
    const webhooks = permissionsOf(natsUserOf("webhooks") ?? hostAgentUser("x"));
    expect(webhooks.subscribe).toContain("cmd.webhooks.*");
    expect(webhooks.publish).toContain("$JS.API.CONSUMER.MSG.NEXT.EVENTS.webhooks");
    expect(webhooks.publish).toContain("$JS.ACK.EVENTS.webhooks.>");
    // It appends to its own stream only.
    expect(webhooks.publish.filter((s) => s.startsWith("ev."))).toEqual(["ev.webhook.*"]);
  });

  it("lets only the gateway ask the postgres manager, and only the manager record clusters", () => {
    const users = natsUsers(["h1"]);
    const asking = users.filter((u) => permissionsOf(u).publish.some((s) => s.startsWith("cmd.postgres.")));
    expect(asking.map((u) => u.user)).toEqual(["gateway"]);
    const recording = users.filter((u) => appendsTo(u, "PGCLUSTERS"));
    expect(recording.map((u) => u.user)).toEqual(["postgres-manager"]);
    const manager = permissionsOf(natsUserOf("postgres-manager") ?? hostAgentUser("x"));
    expect(manager.subscribe).toContain("cmd.postgres.*");
    // Apps' sealed secrets only, never an org's (registry credentials).
    expect(manager.publish).toContain("ev.secret.app.*");
    expect(manager.publish.some((s) => s.includes("ev.secret.org") || s === "ev.secret.*.*")).toBe(false);
    expect(manager.publish).toContain("$JS.API.CONSUMER.CREATE.SECRETS.*.ev.secret.app.>");
    // Its read model's projection pulls and acknowledges its own durable consumer only.
    expect(manager.publish).toContain("$JS.API.CONSUMER.MSG.NEXT.PGCLUSTERS.postgres-manager-read-model");
    expect(manager.publish).toContain("$JS.ACK.PGCLUSTERS.postgres-manager-read-model.>");
    expect(manager.publish.filter((s) => s.includes("MSG.NEXT"))).toHaveLength(1);
    expect(manager.publish.filter((s) => s.startsWith("cmd.volume."))).toEqual([
      "cmd.volume.create",
      "cmd.volume.attach",
      "cmd.volume.destroy",
    ]);
  });
  it("lets only the volume service make disks, and host agents ask only for their own host's auto-extends", () => {
    const volume = permissionsOf(natsUserOf("volume") ?? hostAgentUser("x"));
    expect(volume.publish).toContain("cmd.host.*.volume.*");
    expect(volume.subscribe).toContain("cmd.volume.*");
    expect(volume.subscribe).toContain("cmd.volume.auto_extend.*");
    const gateway = permissionsOf(natsUserOf("gateway") ?? hostAgentUser("x"));
    expect(gateway.publish.filter((s) => s.startsWith("cmd.host.") && s.includes(".volume."))).toEqual([
      "cmd.host.*.volume.stat",
    ]);
    const agent = permissionsOf(hostAgentUser("h1"));
    expect(agent.publish.filter((s) => s.startsWith("cmd.volume."))).toEqual(["cmd.volume.auto_extend.h1"]);
    expect(agent.publish.some((s) => s.startsWith("ev.volume"))).toBe(false);
    expect(agent.subscribe).toContain("cmd.host.h1.volume.*");
  });

  it("lets only the gateway write the edge bundles; the proxy reads them and RELEASES, shares the edge cache, publishes console lines", () => {
    const users = natsUsers(["h1"]);
    const bundles = (u: NatsUserSpec) => u.objects.find((o) => o.bucket === "hangar-edge-bundles");
    expect(users.filter((u) => bundles(u)?.write).map((u) => u.user)).toEqual(["gateway"]);
    expect(users.filter((u) => bundles(u) && !bundles(u)?.write).map((u) => u.user)).toEqual(["proxy"]);
    const cache = users.filter((u) => u.kv.some((b) => b.bucket === "hangar-edge-cache"));
    expect(cache.map((u) => u.user)).toEqual(["proxy"]);
    const proxy = permissionsOf(natsUserOf("proxy") ?? hostAgentUser("x"));
    expect(proxy.publish).toContain("$JS.API.CONSUMER.CREATE.RELEASES.>");
    expect(proxy.publish).toContain("$JS.API.CONSUMER.CREATE.OBJ_hangar-edge-bundles.>");
    expect(proxy.publish).not.toContain("$O.hangar-edge-bundles.>");
    expect(proxy.publish).toContain("$KV.hangar-edge-cache.>");
    expect(proxy.publish).toContain("logs.*.*.*");
    // It reads releases and appends to no stream; it never purges the bundles.
    expect(proxy.publish.some((s) => s.startsWith("ev."))).toBe(false);
    expect(proxy.publish).not.toContain("$JS.API.STREAM.PURGE.OBJ_hangar-edge-bundles");
  });

  it("lets the proxy read the apps' sealed secrets (its edge apps' env), never an org's", () => {
    const proxy = permissionsOf(natsUserOf("proxy") ?? hostAgentUser("x"));
    expect(proxy.publish).toContain("$JS.API.CONSUMER.CREATE.SECRETS.*.ev.secret.app.>");
    expect(proxy.publish).toContain("$JS.API.DIRECT.GET.SECRETS.ev.secret.app.>");
    // No consumer or direct get of the whole stream, nor of the orgs' registry credentials.
    expect(proxy.publish.some((s) => s.includes("ev.secret.org"))).toBe(false);
    expect(proxy.publish).not.toContain("$JS.API.CONSUMER.CREATE.SECRETS.>");
    expect(proxy.publish).not.toContain("$JS.API.DIRECT.GET.SECRETS");
    expect(proxy.publish).not.toContain("$JS.API.DIRECT.GET.SECRETS.>");
    // It appends no secret.
    expect(appendsTo(natsUserOf("proxy") ?? hostAgentUser("x"), "SECRETS")).toBe(false);
  });
});

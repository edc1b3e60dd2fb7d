import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { OrgNetworks } from "../src/network/org-networks.js";
import { orgNetCandidate, orgNetwork } from "../src/network/sixpn.js";

// One bucket per test file run: the shared nats-server outlives it.
const bucket = `hangar-6pn-test-${process.pid}`;
let a: NatsConnection;
let b: NatsConnection;

beforeAll(async () => {
  a = await connect({ servers: inject("natsUrl") });
  b = await connect({ servers: inject("natsUrl") });
});

afterAll(async () => {
  await new Kvm(a).create(bucket).then((kv) => kv.destroy());
  await Promise.all([a.close(), b.close()]);
});

describe("org 6PN prefixes in NATS KV", () => {
  it("allocates an org's first candidate once, and a later registry reads it back", async () => {
    const first = await OrgNetworks.open(a, { bucket });
    const network = await first.of("acme");
    expect(network).toEqual(orgNetwork("acme", orgNetCandidate("acme", 0)));
    const kv = await new Kvm(a).open(bucket);
    expect((await kv.get("org.acme"))?.string()).toBe(`${network.net.slice(0, 4)}:${network.net.slice(4)}`);
    expect((await kv.get(`net.${network.net}`))?.string()).toBe("acme");
    const later = await OrgNetworks.open(b, { bucket });
    expect(await later.of("acme")).toEqual(network);
  });

  it("two agents racing for the same orgs both end with the winner's prefix", async () => {
    const [one, two] = await Promise.all([OrgNetworks.open(a, { bucket }), OrgNetworks.open(b, { bucket })]);
    const orgs = Array.from({ length: 20 }, (_, i) => `race-${i}`);
    const [fromOne, fromTwo] = await Promise.all([
      Promise.all(orgs.map((org) => one.of(org))),
      Promise.all(orgs.map((org) => two.of(org))),
    ]);
    expect(fromTwo).toEqual(fromOne);
    // Every org its own /48.
    expect(new Set(fromOne.map((n) => n.prefix)).size).toBe(orgs.length);
  });

  it("an org whose candidate another org holds takes its next candidate", async () => {
    const kv = await new Kvm(a).open(bucket);
    const taken = orgNetCandidate("collides", 0);
    await kv.create(`net.${taken}`, "squatter");
    const networks = await OrgNetworks.open(b, { bucket });
    const network = await networks.of("collides");
    expect(network.net).toBe(orgNetCandidate("collides", 1));
    expect((await kv.get(`net.${taken}`))?.string()).toBe("squatter");
  });

  it("keys a slug that is not a KV token by its base64url, and refuses an empty slug", async () => {
    const networks = await OrgNetworks.open(a, { bucket });
    const network = await networks.of("Acme Inc.");
    const kv = await new Kvm(a).open(bucket);
    expect(await kv.get(`org.=${Buffer.from("Acme Inc.").toString("base64url")}`)).not.toBeNull();
    expect((await kv.get(`net.${network.net}`))?.string()).toBe("Acme Inc.");
    await expect(networks.of("")).rejects.toThrow(/needs its slug/);
  });
});

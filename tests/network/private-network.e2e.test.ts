// Issue 12, acceptance 1: two apps of one org on two hosts (topology hosts h1 and h2, pinned by
// region), and an app of another org. App a finds app b by its .internal names and connects to it
// across hosts over 6PN; a stopped machine leaves b.internal within one second of its MachineExited
// event's append; the other org's app gets NXDOMAIN for b.internal and cannot connect to b's 6PN
// address even though it knows it.
import { setTimeout as sleep } from "node:timers/promises";
import { EVENT_TYPES_HEADER } from "@hangar/eventstore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { createMachine, HTTP_PORT, type MachineNetwork, probe, pushNetworkImage, SERVE } from "./machines.js";

let p: TestPlatform;
let image: string;
let a: MachineNetwork;
let b: MachineNetwork;
let c: MachineNetwork;

beforeAll(async () => {
  p = await startTestPlatform({ hosts: 2 });
  // Host h2 is the only one in region "ams": a machine created there lands on it.
  await p.startHostAgent(1, { HANGAR_REGION: "ams" });
  image = await pushNetworkImage(p);
  // Apps name an existing org: the two tenants are made first.
  for (const slug of ["acme", "rival"]) await p.api.ok("POST", "/orgs", { slug });
  for (const [app, org] of [
    ["a", "acme"],
    ["b", "acme"],
    ["c", "rival"],
  ]) {
    await p.api.ok("POST", "/apps", { app_name: app, org_slug: org });
  }
  [a, b, c] = await Promise.all([
    createMachine(p, "a", { image, cmd: SERVE }),
    createMachine(p, "b", { image, cmd: SERVE, region: "ams" }),
    createMachine(p, "c", { image, cmd: SERVE }),
  ]);
}, 240_000);

afterAll(async () => {
  await p?.close();
}, 120_000);

describe("two apps of one org on two hosts", () => {
  it("has one host agent per topology host, and no second one for a host", async () => {
    expect(p.hostIds).toEqual(["local-1", "local-1-h2"]);
    await expect(p.startHostAgent(0)).rejects.toThrow(RangeError);
    await expect(p.startHostAgent(2)).rejects.toThrow(/others are 1\.\.1/);
  });

  it("run on different hosts, each machine with a 6PN address of its org's /48", () => {
    expect(a.region).toBe("local");
    expect(b.region).toBe("ams");
    for (const m of [a, b, c]) expect(m.private_ip).toMatch(/^fdaa:/);
    const org48 = (ip: string) => ip.split(":").slice(0, 3).join(":");
    expect(org48(a.private_ip)).toBe(org48(b.private_ip));
    expect(org48(c.private_ip)).not.toBe(org48(b.private_ip));
  });

  it("a resolves b.internal to b's machine and connects to it by that name", async () => {
    const url = `http://b.internal:${HTTP_PORT}/`;
    const seen = await probe(p, "a", a.id, {
      resolve: [{ name: "b.internal", type: "AAAA" }],
      fetch: [url],
    });
    expect(seen.resolve).toEqual([{ name: "b.internal", type: "AAAA", records: [b.private_ip] }]);
    expect(seen.fetch).toEqual([{ url, status: 200, body: `b ${b.id}\n` }]);
  });

  it("answers top1.nearest.of, <id>.vm and _apps.internal as Fly does", async () => {
    const seen = await probe(p, "a", a.id, {
      resolve: [
        { name: "top1.nearest.of.b.internal", type: "AAAA" },
        { name: `${b.id}.vm.b.internal`, type: "AAAA" },
        { name: "_apps.internal", type: "TXT" },
        { name: "vms.b.internal", type: "TXT" },
        { name: "regions.b.internal", type: "TXT" },
      ],
    });
    expect(seen.resolve.map((r) => r.records ?? r.error)).toEqual([
      [b.private_ip],
      [b.private_ip],
      ["a,b"],
      [`${b.id} ams`],
      ["ams"],
    ]);
  });

  it("puts a machine on a's own host first in top1.nearest.of", async () => {
    const near = await createMachine(p, "b", { image, cmd: SERVE });
    try {
      const seen = await probe(p, "a", a.id, {
        resolve: [
          { name: "top1.nearest.of.b.internal", type: "AAAA" },
          { name: "top2.nearest.of.b.internal", type: "AAAA" },
          { name: "b.internal", type: "AAAA" },
        ],
      });
      expect(seen.resolve.map((r) => r.records ?? r.error)).toEqual([
        [near.private_ip],
        [near.private_ip, b.private_ip].sort(),
        [near.private_ip, b.private_ip].sort(),
      ]);
    } finally {
      await p.api.ok("POST", `/apps/b/machines/${near.id}/stop`);
      await p.api.ok("GET", `/apps/b/machines/${near.id}/wait?state=stopped&timeout=30`);
      await p.api.ok("DELETE", `/apps/b/machines/${near.id}`);
    }
  });
});

describe("another org's app", () => {
  it("gets NXDOMAIN for b.internal and sees only its own apps", async () => {
    const seen = await probe(p, "c", c.id, {
      resolve: [
        { name: "b.internal", type: "AAAA" },
        { name: `${b.id}.vm.b.internal`, type: "AAAA" },
        { name: "_apps.internal", type: "TXT" },
      ],
    });
    expect(seen.resolve.map((r) => r.records ?? r.error)).toEqual(["ENOTFOUND", "ENOTFOUND", ["c"]]);
  });

  it("cannot connect to b's 6PN address even though it knows it, while a can", async () => {
    const target = { host: b.private_ip, port: HTTP_PORT };
    const fromC = await probe(p, "c", c.id, { timeoutMs: 3000, connect: [target] });
    const fromA = await probe(p, "a", a.id, { timeoutMs: 3000, connect: [target] });
    expect(fromC.connect[0]?.connected).toBe(false);
    expect(fromA.connect[0]?.connected).toBe(true);
  });
});

describe("a stopped machine", () => {
  it("leaves b.internal within one second of its MachineExited event's append", async () => {
    const nc = await p.connectNats();
    try {
      // When each of the stop's events was appended (its arrival here, on the same host's clock).
      const appended = new Map<string, number>();
      const sub = nc.subscribe(`ev.machine.b.${b.id}`, {
        callback: (_, msg) => {
          for (const type of msg.headers?.get(EVENT_TYPES_HEADER).split(",") ?? []) {
            if (!appended.has(type)) appended.set(type, Date.now());
          }
        },
      });
      await nc.flush();
      // a polls its resolver every 10 ms and says (by the host's clock, which the machine shares)
      // when b's address left the answer; it checks first that the address is there.
      const watching = probe(p, "a", a.id, {
        waitGone: { name: "b.internal", address: b.private_ip, pollMs: 10, forMs: 30_000 },
      });
      await sleep(2000);
      await p.api.ok("POST", `/apps/b/machines/${b.id}/stop`);
      const { waitGone } = await watching;
      await p.api.ok("GET", `/apps/b/machines/${b.id}/wait?state=stopped&timeout=30`);
      await nc.flush();
      sub.unsubscribe();
      expect(waitGone?.error).toBeUndefined();
      const goneAt = waitGone?.goneAt ?? Number.NaN;
      const since = (type: string) => goneAt - (appended.get(type) ?? Number.NaN);
      process.stdout.write(
        `b.internal dropped the stopped machine ${since("MachineStopRequested")} ms after MachineStopRequested, ` +
          `${since("MachineExited")} ms after MachineExited\n`,
      );
      expect(since("MachineExited")).toBeLessThanOrEqual(1000);
    } finally {
      await nc.close();
    }
  });
});

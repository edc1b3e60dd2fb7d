import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AddressPart } from "./address.js";
import { runSetup, teardownOf } from "./testing.js";

let stateDir: string;

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "address-part-"));
});

afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

/** A machine in a network namespace of its own, whose address is claimed host-wide. */
const NETNS_SPEC = { sandbox: { image: "hello@sha256:1", lowers: [], user: "", network: "netns" as const } };

describe("AddressPart", () => {
  it("gives each machine its own private address and a free port", async () => {
    const part = new AddressPart(stateDir, "127.0.0.1", () => true);
    const a = runSetup(stateDir, "a");
    const b = runSetup(stateDir, "b");
    await part.prepare(a);
    await part.prepare(b);
    expect(a.privateIp).toMatch(/^127\.77\.\d+\.\d+$/);
    expect(b.privateIp).not.toBe(a.privateIp);
    expect(a.port).toBeGreaterThan(0);
    expect(b.port).not.toBe(a.port);
  });

  it("keeps a machine's address across runs, and forgets it on release", async () => {
    const part = new AddressPart(stateDir, "127.0.0.1", () => false);
    const first = runSetup(stateDir, "a");
    await part.prepare(first);
    const again = runSetup(stateDir, "a");
    await part.prepare(again);
    expect(again.privateIp).toBe(first.privateIp);
    await part.release(teardownOf(first));
    expect((await part.load()).has("a")).toBe(false);
  });

  it("takes the address and port a spec asks for", async () => {
    const part = new AddressPart(stateDir, "127.0.0.1", () => false);
    const run = runSetup(stateDir, "a", { privateIp: "127.77.9.9", port: 4321 });
    await part.prepare(run);
    expect([run.privateIp, run.port]).toEqual(["127.77.9.9", 4321]);
  });

  it("gives a machine whose start died before its run record the namespace address it claimed, and frees it on release", async () => {
    const claims = join(stateDir, "claims");
    const network = { machineCidr: "10.200.8.0/24", netns: undefined };
    const first = runSetup(stateDir, "a", NETNS_SPEC);
    // Launch makes the machine's folder before any part prepares.
    await first.dir.prepareRun();
    await new AddressPart(stateDir, "127.0.0.1", () => false, network, claims).prepare(first);
    expect(first.privateIp).toBe("10.200.8.2");
    // A new agent (nothing in memory, no run.json): the same address, no second claim.
    const part = new AddressPart(stateDir, "127.0.0.1", () => false, network, claims);
    const again = runSetup(stateDir, "a", NETNS_SPEC);
    await part.prepare(again);
    expect(again.privateIp).toBe("10.200.8.2");
    const other = runSetup(stateDir, "b", NETNS_SPEC);
    await other.dir.prepareRun();
    await part.prepare(other);
    expect(other.privateIp).toBe("10.200.8.6");
    expect((await readdir(claims)).sort()).toEqual(["10.200.8.2", "10.200.8.6"]);
    await new AddressPart(stateDir, "127.0.0.1", () => false, network, claims).release(teardownOf(again));
    expect(await readdir(claims)).toEqual(["10.200.8.6"]);
  });

  it("takes back the claim its note names over a run record's address another machine holds, and leaves that one alone", async () => {
    const claims = join(stateDir, "claims");
    const network = { machineCidr: "10.200.9.0/24", netns: undefined };
    const run = runSetup(stateDir, "a", NETNS_SPEC);
    await run.dir.prepareRun();
    await mkdir(claims, { recursive: true });
    // The run record says .2 (now another machine's); the note says .6 (a's last claim, made before
    // its agent died).
    await writeFile(join(run.dir.path, "run.json"), JSON.stringify({ privateIp: "10.200.9.2", port: 0 }));
    await writeFile(join(run.dir.path, "netns-address"), "10.200.9.6");
    await writeFile(join(claims, "10.200.9.2"), "other");
    await writeFile(join(claims, "10.200.9.6"), "a");
    const part = new AddressPart(stateDir, "127.0.0.1", () => false, network, claims);
    await part.prepare(run);
    expect(run.privateIp).toBe("10.200.9.6");
    expect((await readdir(claims)).sort()).toEqual(["10.200.9.2", "10.200.9.6"]);
    expect(await readFile(join(claims, "10.200.9.2"), "utf8")).toBe("other");
    await part.release(teardownOf(run));
    expect(await readdir(claims)).toEqual(["10.200.9.2"]);
  });
});

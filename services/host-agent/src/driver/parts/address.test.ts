import { mkdtemp, rm } from "node:fs/promises";
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
});

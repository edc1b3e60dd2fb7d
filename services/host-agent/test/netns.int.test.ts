import { existsSync } from "node:fs";
import { join } from "node:path";
import { createNetworkTopology, type NetworkTopology } from "@hangar/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  claimNetnsAddress,
  ensureNetns,
  IP,
  netnsName,
  releaseNetnsAddress,
  removeNetns,
  vethName,
} from "../src/driver/netns.js";
import { waitFor } from "./wait.js";

const claimed: Array<[string, string]> = [];
let topology: NetworkTopology | undefined;
const canMakeNetns = process.getuid?.() === 0 && existsSync(IP);

describe.runIf(canMakeNetns)("network namespace removal", () => {
  // The pairs' host ends go into a host namespace of a test topology, never the test's own.
  beforeAll(async () => {
    topology = await createNetworkTopology({ hosts: 1, internet: false });
  });
  afterEach(async () => {
    for (const [id, address] of claimed.splice(0)) {
      await removeNetns(id, topology?.hosts[0]?.netns);
      await releaseNetnsAddress(id, address);
    }
  });
  afterAll(async () => {
    await topology?.close();
  });

  it("removes namespace and pair however quickly the kernel tears the namespace down", async () => {
    const host = topology?.hosts[0];
    if (!host) throw new Error("no topology host");
    const vethExists = async (id: string) =>
      (await topology?.exec(host.netns, [IP, "link", "show", "dev", vethName(id)]))?.code === 0;
    // The kernel deletes the pair in the background after `ip netns delete`: the host end can be
    // listed, then be gone before it is deleted. Removal right after set-up hits that window often.
    for (let i = 0; i < 40; i++) {
      const id = `nsrm${process.pid}-${i}`;
      // Claimed host-wide like an agent's, so tests running alongside never get the same /30.
      const address = await claimNetnsAddress(id, new Set(), undefined, {
        cidr: host.machineCidr,
        hostNs: host.netns,
      });
      if (!address) throw new Error("no free namespace address");
      claimed.push([id, address]);
      await ensureNetns({ machineId: id, ipv4: address }, host.netns);
      expect(await vethExists(id)).toBe(true);
      await removeNetns(id, host.netns);
      expect(existsSync(join("/run/netns", netnsName(id)))).toBe(false);
      // The pair goes too, once the kernel has finished with the namespace.
      await waitFor(`${vethName(id)} gone`, async () => ((await vethExists(id)) ? undefined : true), 5_000);
      // Removing again (a destroy after a cut-short one) is not an error.
      await removeNetns(id, host.netns);
    }
  });

  it("sets a new namespace up over a host end its namespace left behind, and again over one it keeps", async () => {
    const host = topology?.hosts[0];
    if (!host) throw new Error("no topology host");
    const id = `nsleft${process.pid}`;
    const address = await claimNetnsAddress(id, new Set(), undefined, {
      cidr: host.machineCidr,
      hostNs: host.netns,
    });
    if (!address) throw new Error("no free namespace address");
    claimed.push([id, address]);
    // A host end of the machine's name with no namespace of the machine's: a new set-up replaces it.
    await topology?.exec(host.netns, [
      IP,
      "link",
      "add",
      vethName(id),
      "type",
      "veth",
      "peer",
      "name",
      `${vethName(id)}p`,
    ]);
    await ensureNetns({ machineId: id, ipv4: address }, host.netns);
    const eth0 = await topology?.exec(netnsName(id), [IP, "-o", "-4", "addr", "show", "dev", "eth0"]);
    expect(eth0?.stdout).toContain(`${address}/30`);
    // Ensured again (a restarted agent): the same pair, nothing changed.
    await ensureNetns({ machineId: id, ipv4: address }, host.netns);
    const again = await topology?.exec(netnsName(id), [IP, "-o", "-4", "addr", "show", "dev", "eth0"]);
    expect(again?.stdout).toBe(eth0?.stdout);
  });
});

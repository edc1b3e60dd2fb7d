import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
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
afterEach(async () => {
  for (const [id, address] of claimed.splice(0)) {
    await removeNetns(id);
    await releaseNetnsAddress(id, address);
  }
});

describe.runIf(process.getuid?.() === 0 && existsSync(IP))("network namespace removal", () => {
  it("removes namespace and pair however quickly the kernel tears the namespace down", async () => {
    // The kernel deletes the pair in the background after `ip netns delete`: the host end can be
    // listed, then be gone before it is deleted. Removal right after set-up hits that window often.
    for (let i = 0; i < 40; i++) {
      const id = `nsrm${process.pid}-${i}`;
      // Claimed host-wide like an agent's, so tests running alongside never get the same /30.
      const address = await claimNetnsAddress(id, new Set());
      if (!address) throw new Error("no free namespace address");
      claimed.push([id, address]);
      await ensureNetns(id, address);
      expect(existsSync(join("/sys/class/net", vethName(id)))).toBe(true);
      await removeNetns(id);
      expect(existsSync(join("/run/netns", netnsName(id)))).toBe(false);
      // The pair goes too, once the kernel has finished with the namespace.
      const veth = join("/sys/class/net", vethName(id));
      await waitFor(`${vethName(id)} gone`, () => (existsSync(veth) ? undefined : true), 5_000);
      // Removing again (a destroy after a cut-short one) is not an error.
      await removeNetns(id);
    }
  });
});

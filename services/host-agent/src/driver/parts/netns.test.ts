import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { IP, netnsName } from "../netns.js";
import { NetnsPart } from "./netns.js";
import { runSetup, teardownOf } from "./testing.js";

/** Whether this host lets us make network namespaces (root with iproute2). */
function canMakeNetns(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync(IP, ["netns", "list"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const sandbox = { image: "img@sha256:0", lowers: [], user: "" };

describe("NetnsPart", () => {
  it("leaves a machine on the host's network alone", async () => {
    const part = new NetnsPart();
    const run = runSetup("/nonexistent", `nsh${process.pid}`, { sandbox: { ...sandbox, network: "host" } });
    await part.prepare(run);
    expect(existsSync(`/run/netns/${netnsName(run.spec.machineId)}`)).toBe(false);
  });

  it.skipIf(!canMakeNetns())(
    "makes the machine's namespace on its address and removes it on release",
    async () => {
      const part = new NetnsPart();
      const run = runSetup("/nonexistent", `nsp${process.pid}`, {
        sandbox: { ...sandbox, network: "netns" },
      });
      run.privateIp = "172.30.255.250";
      try {
        await part.prepare(run);
        const addrs = execFileSync(IP, ["-n", netnsName(run.spec.machineId), "-4", "addr", "show", "eth0"], {
          encoding: "utf8",
        });
        expect(addrs).toContain("172.30.255.250/30");
      } finally {
        await part.release(teardownOf(run));
      }
      expect(existsSync(`/run/netns/${netnsName(run.spec.machineId)}`)).toBe(false);
    },
  );
});

import { describe, expect, it } from "vitest";
import type { MachineLink } from "../../network/host-network.js";
import { NetnsPart } from "./netns.js";
import { runSetup, teardownOf } from "./testing.js";

const sandbox = { image: "img@sha256:0", lowers: [], user: "" };

/** A host network that records what the part asks of it (the real one is tested in test/host-network.int.test.ts). */
function recordingNetwork() {
  const calls: Array<["ensure", MachineLink] | ["remove", string]> = [];
  return {
    calls,
    ensureMachine: async (link: MachineLink) => {
      calls.push(["ensure", link]);
    },
    removeMachine: async (machineId: string) => {
      calls.push(["remove", machineId]);
    },
  };
}

describe("NetnsPart", () => {
  it("leaves a machine on the host's network alone", async () => {
    const network = recordingNetwork();
    const run = runSetup("/nonexistent", "m1", { sandbox: { ...sandbox, network: "host" } });
    await new NetnsPart(network).prepare(run);
    expect(network.calls).toEqual([]);
  });

  it("asks the host network for the machine's link, with its 6PN address, and removes it on release", async () => {
    const network = recordingNetwork();
    const part = new NetnsPart(network);
    const sixpn = { org: "acme", prefix: "fdaa:1:2::/48", address: "fdaa:1:2:3::4" };
    const run = runSetup("/nonexistent", "m2", { sandbox: { ...sandbox, network: "netns" }, sixpn });
    run.privateIp = "10.200.0.2";
    await part.prepare(run);
    await part.release(teardownOf(run));
    expect(network.calls).toEqual([
      ["ensure", { machineId: "m2", ipv4: "10.200.0.2", sixpn }],
      ["remove", "m2"],
    ]);
  });
});

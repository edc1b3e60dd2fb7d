import { describe, expect, it } from "vitest";
import { machineParts } from "./mod.js";

describe("machineParts", () => {
  it("wires every resource once, an address before the namespace on it and the cgroup before the root filesystem, the root filesystem before the files written into it and the volumes", () => {
    const parts = machineParts({
      stateDir: "/nonexistent",
      hostIp: "127.0.0.1",
      suspend: "signals",
      logger: { warn: () => {} },
      holdsPort: () => false,
      sink: () => {},
    });
    expect(parts.all.map((p) => p.name)).toEqual([
      "address",
      "network namespace",
      "cgroup",
      "root filesystem",
      "files",
      "volumes",
      "output",
    ]);
    // Chains hold each part once, in the order of `all`, and a part only needs what its chain did before it.
    expect(parts.chains.map((chain) => chain.map((p) => p.name))).toEqual([
      ["address", "network namespace"],
      ["cgroup", "root filesystem", "files", "volumes"],
      ["output"],
    ]);
    expect(parts.chains.flat()).toEqual(parts.all);
    expect(parts.all).toContain(parts.address);
    expect(parts.all).toContain(parts.cgroup);
    expect(parts.all).toContain(parts.output);
  });
});

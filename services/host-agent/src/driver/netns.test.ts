import { describe, expect, it } from "vitest";
import { hostEnd, isNetnsAddress, netnsExecArgv, nextNetnsAddress, vethName } from "./netns.js";

describe("network namespace addresses", () => {
  it("gives each machine the .2 of its own /30 in 172.30.0.0/16", () => {
    expect(nextNetnsAddress(new Set())).toBe("172.30.0.2");
    expect(nextNetnsAddress(new Set(["172.30.0.2"]))).toBe("172.30.0.6");
    const full = new Set<string>();
    for (let i = 0; i < 64; i++) full.add(`172.30.0.${i * 4 + 2}`);
    expect(nextNetnsAddress(full)).toBe("172.30.1.2");
    expect(hostEnd("172.30.1.6")).toBe("172.30.1.5");
  });

  it("tells namespace addresses from loopback ones", () => {
    expect(isNetnsAddress("172.30.4.10")).toBe(true);
    expect(isNetnsAddress("172.30.4.9")).toBe(false);
    expect(isNetnsAddress("127.77.0.1")).toBe(false);
  });

  it("names the veth within the 15-byte limit, the same for the same machine", () => {
    const id = "a".repeat(64);
    expect(vethName(id)).toHaveLength(14);
    expect(vethName(id)).toBe(vethName(id));
    expect(vethName(id)).not.toBe(vethName("b"));
    expect(netnsExecArgv("m1", ["bwrap", "--"]).slice(1)).toEqual([
      "netns",
      "exec",
      "hangar-m1",
      "bwrap",
      "--",
    ]);
  });
});

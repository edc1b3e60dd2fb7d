import { describe, expect, it } from "vitest";
import { nextPrivateIp, probePort } from "./address.js";

describe("nextPrivateIp", () => {
  it("takes the lowest free address of 127.77.0.0/16, skipping .0 and .255", () => {
    expect(nextPrivateIp(new Set())).toBe("127.77.0.1");
    expect(nextPrivateIp(new Set(["127.77.0.1", "127.77.0.3"]))).toBe("127.77.0.2");
    const firstBlock = new Set(Array.from({ length: 254 }, (_, i) => `127.77.0.${i + 1}`));
    expect(nextPrivateIp(firstBlock)).toBe("127.77.1.1");
  });

  it("returns null when every address is taken", () => {
    const all = new Set<string>();
    for (let hi = 0; hi < 256; hi++) for (let lo = 1; lo < 255; lo++) all.add(`127.77.${hi}.${lo}`);
    expect(nextPrivateIp(all)).toBeNull();
  });
});

describe("probePort", () => {
  it("finds a free port and rejects a taken one", async () => {
    const port = await probePort("127.0.0.1", 0);
    expect(port).toBeGreaterThan(0);
    const { createServer } = await import("node:net");
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    try {
      await expect(probePort("127.0.0.1", port)).rejects.toMatchObject({ code: "EADDRINUSE" });
    } finally {
      server.close();
    }
  });
});

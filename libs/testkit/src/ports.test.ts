import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "./mod.js";
import { uniqueFreePort } from "./ports.js";

describe("freePort", () => {
  it("returns a port that can be listened on", async () => {
    const port = await freePort();
    const server = createServer().listen(port, "127.0.0.1");
    await once(server, "listening");
    server.close();
  });

  it("picks below the kernel's ephemeral range, where no outgoing connection takes it first, never twice", async () => {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    const ports = await Promise.all(Array.from({ length: 50 }, () => freePort()));
    for (const port of ports) expect(port).toBeLessThan(low);
    expect(new Set(ports).size).toBe(50);
  });

  it("hands out distinct ports through uniqueFreePort", async () => {
    const taken = new Set<number>();
    for (let i = 0; i < 20; i++) await uniqueFreePort(taken);
    expect(taken.size).toBe(20);
  });
});

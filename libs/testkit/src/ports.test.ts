import { once } from "node:events";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "./mod.js";
import { ephemeralLow } from "./ports.js";

describe("freePort", () => {
  it("returns a port that can be listened on", async () => {
    const port = await freePort();
    const server = createServer().listen(port, "127.0.0.1");
    await once(server, "listening");
    server.close();
  });

  it("picks below the kernel's ephemeral range, where no outgoing connection takes it first, never twice", async () => {
    const ports = await Promise.all(Array.from({ length: 50 }, () => freePort()));
    for (const port of ports) expect(port).toBeLessThan(ephemeralLow);
    expect(new Set(ports).size).toBe(50);
  });
});

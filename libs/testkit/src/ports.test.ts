import { once } from "node:events";
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

  it("hands out distinct ports through uniqueFreePort", async () => {
    const taken = new Set<number>();
    for (let i = 0; i < 20; i++) await uniqueFreePort(taken);
    expect(taken.size).toBe(20);
  });
});

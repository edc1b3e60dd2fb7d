import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentRefusal, MemberClient } from "./member-client.js";

// A real HTTP server answering as a member agent whose token is not the one the manager sends (the
// cluster's HANGAR_PG_AGENT_TOKEN changed since the member started).
let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.headers.authorization === "Bearer right") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"role":"primary"}');
      return;
    }
    res
      .writeHead(401, { "content-type": "application/json" })
      .end(
        '{"error":"a bearer token (the cluster\'s HANGAR_PG_AGENT_TOKEN) is required","code":"unauthenticated"}',
      );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("MemberClient", () => {
  it("turns a refused token into a failed precondition that says how to mend it, not an internal error", async () => {
    const client = new MemberClient(port);
    const refused = await client.status("127.0.0.1", "changed").catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(AgentRefusal);
    expect((refused as AgentRefusal).code).toBe("failed_precondition");
    expect(String((refused as Error).message)).toMatch(/HANGAR_PG_AGENT_TOKEN was changed or unset.*restart/);
  });

  it("passes the agent's answer through with the right token", async () => {
    await expect(new MemberClient(port).status("127.0.0.1", "right")).resolves.toEqual({ role: "primary" });
  });
});

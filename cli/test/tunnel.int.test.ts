import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage } from "node:http";
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeBothWays } from "@hangar/config";
import { freePort } from "@hangar/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../src/api.js";
import { runCliIn } from "./run-cli.js";

// `hangar proxy` and `hangar ssh console` refusing before any tunnel: bad arguments (usage, exit 2)
// and a gateway that cannot be reached (exit 1, saying so). Tunnels themselves are tested on the
// whole platform (tests/network/reaching-in.e2e.test.ts).

let home: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "hangar-cli-tunnel-"));
  // Nothing listens there.
  const local = { api_url: `http://127.0.0.1:${await freePort()}`, token: "t" };
  await writeFile(join(home, "local.json"), JSON.stringify(local));
});

afterAll(async () => {
  if (home) await rm(home, { recursive: true, force: true });
});

describe("hangar proxy and ssh console", () => {
  it("refuse ports that are not <local>[:<remote>]", async () => {
    const res = await runCliIn(home, ["proxy", "15432:db", "-a", "web"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/expected <local>\[:<remote>\]/);
  });

  it("say when the gateway cannot be reached", async () => {
    for (const args of [
      ["proxy", "0:5432", "-a", "web"],
      ["ssh", "console", "-a", "web", "-C", "true"],
    ]) {
      const res = await runCliIn(home, args);
      expect(res.code, args.join(" ")).toBe(1);
      expect(res.stderr).toMatch(
        /cannot reach the Hangar API at http:\/\/127\.0\.0\.1:\d+: is `npm start` running\?/,
      );
    }
  });
});

describe("ApiClient.openTunnel for a port tunnel over plain HTTP (the upgrade made by hand)", () => {
  it("sends the token and the path, relays after 101, and reads the gateway's error for any other answer", async () => {
    const heads: string[] = [];
    // A gateway's tunnel route: upgrades only (any plain request is a 404 here).
    const server = createServer((_req, res) => res.writeHead(404).end());
    server.on("upgrade", (req: IncomingMessage, socket: Socket) => {
      heads.push(`${req.method} ${req.url} ${req.headers.authorization} ${req.headers.upgrade}`);
      if (req.headers.authorization !== "Bearer good") {
        const body = JSON.stringify({ error: "not for this token", status: "permission_denied" });
        socket.end(
          `HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        );
        return;
      }
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: hangar-tunnel\r\n\r\n",
      );
      socket.pipe(socket);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const socket = await new ApiClient({ apiUrl, token: "good" }).openTunnel("web", "m1", "tunnel", {
        port: 5432,
      });
      expect(heads).toEqual(["GET /v1/apps/web/machines/m1/tunnel?port=5432 Bearer good hangar-tunnel"]);
      // Its reads go to the other end of a relay (pipeBothWays), as `hangar proxy` does.
      const near = createNetServer({ allowHalfOpen: true }, (s) => pipeBothWays(s, socket));
      near.listen(0, "127.0.0.1");
      await once(near, "listening");
      const client = connect({ port: (near.address() as AddressInfo).port, host: "127.0.0.1" });
      client.end("ping");
      const chunks: Buffer[] = [];
      client.on("data", (c: Buffer) => chunks.push(c));
      await once(client, "close");
      expect(Buffer.concat(chunks).toString()).toBe("ping");
      near.close();

      const refused = new ApiClient({ apiUrl, token: "bad" }).openTunnel("web", "m1", "tunnel", {
        port: 5432,
      });
      await expect(refused).rejects.toMatchObject({ name: "ApiError", httpStatus: 403 });
      await expect(refused).rejects.toThrow(/not for this token/);
      // Asked by hand, then again through the HTTP client, which reads the error.
      expect(heads.slice(1)).toEqual([
        "GET /v1/apps/web/machines/m1/tunnel?port=5432 Bearer bad hangar-tunnel",
        "GET /v1/apps/web/machines/m1/tunnel?port=5432 Bearer bad hangar-tunnel",
      ]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe("hangar console", () => {
  it("runs fly.toml's console_command, or -C's command, in a machine of the config's app", async () => {
    const asked: string[] = [];
    const server = createServer((_req, res) => res.writeHead(404).end());
    server.on("upgrade", (req: IncomingMessage, socket: Socket) => {
      asked.push(req.url ?? "");
      const body = JSON.stringify({ error: "no started machine", status: "failed_precondition" });
      socket.end(
        `HTTP/1.1 412 Precondition Failed\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      );
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const dir = await mkdtemp(join(tmpdir(), "hangar-cli-console-"));
    try {
      const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await writeFile(join(dir, "local.json"), JSON.stringify({ api_url: apiUrl, token: "t" }));
      await writeFile(join(dir, "fly.toml"), 'app = "shop"\nconsole_command = "/rails/bin/rails console"\n');
      const fromConfig = await runCliIn(dir, ["console"]);
      expect(fromConfig.code).toBe(1);
      expect(fromConfig.stderr).toMatch(/no started machine/);
      expect(fromConfig.stderr).not.toMatch(/console_command is not supported/);
      const other = await runCliIn(dir, ["console", "-C", "bin/other"]);
      expect(other.code).toBe(1);
      // Another app (-a): the file's console_command is not its own, so a login shell.
      const elsewhere = await runCliIn(dir, ["console", "-a", "blog"]);
      expect(elsewhere.code).toBe(1);
      const cmds = asked.map((url) => new URL(url, "http://x").searchParams.get("cmd"));
      expect(asked.map((url) => url.split("/")[3])).toEqual(["shop", "shop", "blog"]);
      expect(cmds).toEqual(["/rails/bin/rails console", "bin/other", null]);
    } finally {
      server.closeAllConnections();
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

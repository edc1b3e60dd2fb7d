import { Socket } from "node:net";
import type { TunnelTarget } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { testAuth } from "../../test/auth-fixture.js";
import { createApi } from "../http/api.js";
import type { MachinesBackend } from "../http/backend.js";
import { ApiError } from "../http/errors.js";
import type { TunnelOpener } from "./host-tunnels.js";
import type { TunnelUpgrade } from "./upgrade.js";

const { auth: AUTH, token: TOKEN } = testAuth();

/** Records what it is asked to open; "gone" is an app it does not know. */
class Recorder implements TunnelOpener {
  readonly opened: Array<[string, string | undefined, TunnelTarget]> = [];
  readonly socket = new Socket();
  async open(app: string, machineId: string | undefined, target: TunnelTarget): Promise<Socket> {
    if (app === "gone") throw ApiError.of("not_found", `app ${app} not found`);
    this.opened.push([app, machineId, target]);
    return this.socket;
  }
}

/**
 * A GET (or `method`) through the whole API, as an upgrade (with the binding the server gives one)
 * unless `plain`.
 */
async function get(path: string, o: { token?: string; plain?: boolean; method?: string } = {}) {
  const tunnels = new Recorder();
  const api = createApi({
    // Only the tunnel routes are called.
    backend: {} as MachinesBackend,
    auth: AUTH,
    logger: createLogger("test", { level: "silent" }),
    metrics: new Registry(),
    tunnels,
  });
  const accepted: Socket[] = [];
  const upgrade: TunnelUpgrade = {
    accept(s) {
      accepted.push(s);
      return new Response(null, { status: 200 });
    },
  };
  const headers: Record<string, string> = { authorization: `Bearer ${o.token ?? TOKEN}` };
  if (!o.plain) Object.assign(headers, { connection: "Upgrade", upgrade: "hangar-tunnel" });
  const res = await api.request(path, { headers, method: o.method ?? "GET" }, o.plain ? {} : { upgrade });
  // A HEAD's answer has no body.
  const body = res.status === 200 || o.method === "HEAD" ? undefined : await res.json();
  return { res, tunnels, accepted, body };
}

describe("tunnel routes", () => {
  it("hand the host's connection to the upgrade, for a port of the machine or of any started one", async () => {
    const one = await get("/v1/apps/web/machines/m1/tunnel?port=5432");
    expect(one.res.status).toBe(200);
    expect(one.tunnels.opened).toEqual([["web", "m1", { kind: "port", port: 5432 }]]);
    expect(one.accepted).toEqual([one.tunnels.socket]);
    const any = await get("/v1/apps/web/tunnel?port=80");
    expect(any.tunnels.opened).toEqual([["web", undefined, { kind: "port", port: 80 }]]);
  });

  it("run a console's command line split as a shell would, a login shell by default", async () => {
    const cmd = await get(
      `/v1/apps/web/console?cmd=${encodeURIComponent("sh -c 'echo a b'")}&tty=1&cols=120&rows=40`,
    );
    expect(cmd.tunnels.opened[0]?.[2]).toEqual({
      kind: "exec",
      command: ["sh", "-c", "echo a b"],
      tty: true,
      cols: 120,
      rows: 40,
    });
    const shell = await get("/v1/apps/web/machines/m1/console");
    expect(shell.tunnels.opened[0]?.[2]).toEqual({
      kind: "exec",
      command: ["/bin/sh", "-l"],
      tty: false,
      cols: 80,
      rows: 24,
    });
  });

  it("refuse a wrong token, a plain request, bad parameters and an unknown app, opening nothing", async () => {
    const cases = [
      { path: "/v1/apps/web/tunnel?port=1", o: { token: "wrong" }, status: 401 },
      {
        path: "/v1/apps/web/tunnel?port=1",
        o: { plain: true },
        status: 400,
        error: /Upgrade: hangar-tunnel/,
      },
      { path: "/v1/apps/web/tunnel", o: {}, status: 400, error: /port: required/ },
      { path: "/v1/apps/web/tunnel?port=65536", o: {}, status: 400, error: /port: expected/ },
      { path: "/v1/apps/web/tunnel?port=1.5", o: {}, status: 400, error: /port: expected/ },
      { path: "/v1/apps/web/console?cols=0", o: {}, status: 400, error: /cols: expected/ },
      { path: "/v1/apps/web/console?tty=maybe", o: {}, status: 400, error: /tty: expected/ },
      { path: "/v1/apps/Bad_App/tunnel?port=1", o: {}, status: 400 },
      { path: "/v1/apps/gone/tunnel?port=1", o: {}, status: 404, error: /app gone not found/ },
      // Hono runs GET handlers for HEAD, and Node upgrades a HEAD: a console opened so went unaudited.
      { path: "/v1/apps/web/machines/m1/console", o: { method: "HEAD" }, status: 400 },
      { path: "/v1/apps/web/tunnel?port=1", o: { method: "HEAD" }, status: 400 },
    ];
    for (const c of cases) {
      const { res, tunnels, accepted, body } = await get(c.path, c.o);
      expect(res.status, c.path).toBe(c.status);
      expect(accepted).toEqual([]);
      expect(tunnels.opened).toEqual([]);
      if (c.error) expect((body as { error: string }).error).toMatch(c.error);
    }
  });
});

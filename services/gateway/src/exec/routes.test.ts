import type { HostExecReply, ProcessStat } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { testAuth } from "../../test/auth-fixture.js";
import { createApi } from "../http/api.js";
import type { MachinesBackend } from "../http/backend.js";
import type { Catalog, MachineRecord } from "../machines/catalog.js";
import { type MachineInspector, startedHostOf } from "./inspector.js";

const { auth: AUTH, token: TOKEN } = testAuth();

/** App "web" has m1 (started) and m2 (stopped); app "other" has m3 (started). */
const MACHINES: Record<string, string> = { "web:m1": "started", "web:m2": "stopped", "other:m3": "started" };

const catalog: Pick<Catalog, "machine"> = {
  machine: (aggregateId) => {
    const status = MACHINES[aggregateId.replace(".", ":")];
    return status ? ({ state: { status, hostId: "h1" } } as unknown as MachineRecord) : undefined;
  },
};

/** HostInspector's checks (404, 412), then a recorder standing in for the host: refusals never reach it. */
class Recorder implements MachineInspector {
  readonly calls: unknown[][] = [];
  async exec(app: string, id: string, command: string[], timeoutMs: number): Promise<HostExecReply> {
    startedHostOf(catalog, app, id);
    this.calls.push(["exec", app, id, command, timeoutMs]);
    return { stdout: "hi\n", stderr: "", exit_code: 3, exit_signal: 0 };
  }
  async ps(app: string, id: string): Promise<ProcessStat[]> {
    startedHostOf(catalog, app, id);
    this.calls.push(["ps", app, id]);
    const p = { directory: "/", rss: 1, cpu: 0, stime: 0, rtime: 5, listen_sockets: [] };
    return [
      { ...p, pid: 7, command: "node server.js", rss: 50 },
      { ...p, pid: 1, command: "catatonit -- node server.js", rss: 2 },
    ];
  }
}

function request(inspector: MachineInspector, path: string, init: RequestInit = {}) {
  const api = createApi({
    // Only the exec and ps routes are called.
    backend: {} as MachinesBackend,
    auth: AUTH,
    logger: createLogger("test", { level: "silent" }),
    metrics: new Registry(),
    inspector,
  });
  return Promise.resolve(
    api.request(path, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } }),
  );
}

const exec = (
  inspector: MachineInspector,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) =>
  request(inspector, path, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });

describe("POST /v1/apps/{app}/machines/{id}/exec", () => {
  it("runs the command on the machine's host and answers Fly's ExecResponse", async () => {
    const inspector = new Recorder();
    const res = await exec(inspector, "/v1/apps/web/machines/m1/exec", { command: ["sh", "-c", "echo hi"] });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ stdout: "hi\n", stderr: "", exit_code: 3, exit_signal: 0 });
    // flyctl's body: one command line in `cmd`, split as a shell would, and a timeout in seconds.
    await exec(inspector, "/v1/apps/web/machines/m1/exec", { cmd: `sh -c 'echo "a b"'`, timeout: 5 });
    expect(inspector.calls).toEqual([
      ["exec", "web", "m1", ["sh", "-c", "echo hi"], 30_000],
      ["exec", "web", "m1", ["sh", "-c", 'echo "a b"'], 5_000],
    ]);
  });

  it("refuses a request without a valid token with 401", async () => {
    const inspector = new Recorder();
    const none = await exec(
      inspector,
      "/v1/apps/web/machines/m1/exec",
      { command: ["id"] },
      { authorization: "" },
    );
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ status: "unauthenticated" });
    const wrong = await exec(
      inspector,
      "/v1/apps/web/machines/m1/exec",
      { command: ["id"] },
      { authorization: "Bearer nope" },
    );
    expect(wrong.status).toBe(401);
    expect(inspector.calls).toEqual([]);
  });

  it("answers 404 for a machine of another app or none, and 412 for a machine that is not started", async () => {
    const inspector = new Recorder();
    const other = await exec(inspector, "/v1/apps/web/machines/m3/exec", { command: ["id"] });
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({ error: "machine m3 not found in app web", status: "not_found" });
    expect((await exec(inspector, "/v1/apps/web/machines/m9/exec", { command: ["id"] })).status).toBe(404);
    const stopped = await exec(inspector, "/v1/apps/web/machines/m2/exec", { command: ["id"] });
    expect(stopped.status).toBe(412);
    expect(await stopped.json()).toEqual({
      error: "machine m2 is stopped: exec and ps need a started machine",
      status: "failed_precondition",
    });
    expect(inspector.calls).toEqual([]);
  });

  it("refuses bad bodies and timeouts with 400", async () => {
    const inspector = new Recorder();
    for (const body of [
      {},
      { command: [] },
      { cmd: "" },
      { cmd: "   " },
      { command: "id" },
      { command: ["id"], cmd: "id" },
      { command: ["id"], timeout: -1 },
      { command: ["id"], timeout: 1.5 },
      { command: ["id"], timeout: 61 },
      { command: ["id"], timeout: "10" },
      { command: ["cat"], stdin: "hello" },
      { command: ["echo", "a\u0000b"] },
    ]) {
      const res = await exec(inspector, "/v1/apps/web/machines/m1/exec", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { status: string }).status).toBe("invalid_argument");
    }
    const res = await request(inspector, "/v1/apps/web/machines/m1/exec", { method: "POST", body: "{" });
    expect(res.status).toBe(400);
    expect(inspector.calls).toEqual([]);
  });
});

describe("GET /v1/apps/{app}/machines/{id}/ps", () => {
  it("lists the machine's processes by pid, or as sort_by and order say", async () => {
    const inspector = new Recorder();
    const res = await request(inspector, "/v1/apps/web/machines/m1/ps");
    expect(res.status).toBe(200);
    expect(((await res.json()) as ProcessStat[]).map((p) => p.pid)).toEqual([1, 7]);
    const byRss = await request(inspector, "/v1/apps/web/machines/m1/ps?sort_by=rss&order=desc");
    expect(((await byRss.json()) as ProcessStat[]).map((p) => p.rss)).toEqual([50, 2]);
    for (const query of ["sort_by=nope", "order=up"]) {
      expect((await request(inspector, `/v1/apps/web/machines/m1/ps?${query}`)).status, query).toBe(400);
    }
  });

  it("is refused like exec: 401 without a token, 404 for another app's machine, 412 when not started", async () => {
    const inspector = new Recorder();
    const none = await request(inspector, "/v1/apps/web/machines/m1/ps", { headers: { authorization: "" } });
    expect(none.status).toBe(401);
    expect((await request(inspector, "/v1/apps/other/machines/m1/ps")).status).toBe(404);
    expect((await request(inspector, "/v1/apps/web/machines/m2/ps")).status).toBe(412);
    expect(inspector.calls).toEqual([]);
  });
});

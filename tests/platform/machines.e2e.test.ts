// The machines flow end to end, through the HTTP API of a platform whose services run as real
// processes: an app, three machines of examples/hello reached through the proxy, stop/start/destroy,
// the errors Fly's API gives for bad requests, and the monitor's metrics afterwards.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helloConfig, startTestPlatform, type TestPlatform, viaProxy } from "./harness.js";

let p: TestPlatform;

interface Machine {
  id: string;
  name: string;
  state: string;
  region: string;
  instance_id: string;
  private_ip: string;
  config: Record<string, unknown>;
}

beforeAll(async () => {
  p = await startTestPlatform();
}, 120_000);

afterAll(async () => {
  await p?.close();
});

async function waitState(app: string, id: string, state: string): Promise<void> {
  const res = await p.api.call("GET", `/apps/${app}/machines/${id}/wait?state=${state}&timeout=30`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

describe("machines end to end", () => {
  const app = "hello";
  const ids: string[] = [];

  it("creates an app and runs three machines that answer through the proxy", async () => {
    expect((await p.api.call("POST", "/apps", { app_name: app, org_slug: "personal" })).status).toBe(201);
    for (let i = 0; i < 3; i++) {
      const m = await p.api.ok<Machine>("POST", `/apps/${app}/machines`, {
        config: helloConfig({ env: { GREETING: "e2e" } }),
      });
      expect(m.id).toMatch(/^[0-9a-f]{14}$/);
      expect(m.region).toBe("local");
      ids.push(m.id);
    }
    for (const id of ids) await waitState(app, id, "started");

    const list = await p.api.ok<Machine[]>("GET", `/apps/${app}/machines`);
    expect(list.map((m) => m.id).sort()).toEqual([...ids].sort());
    expect(list.every((m) => m.state === "started")).toBe(true);

    // The proxy's table follows the stream live, and a machine that refused a connection before it
    // listened is avoided until its error score decays (half-life 10 s): ask until all three have
    // answered, for up to 30 s.
    const seen = new Set<string>();
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && seen.size < 3) {
      if (seen.size > 0) await sleep(20);
      const res = await viaProxy(p, app, "/hi");
      expect(res.status).toBe(200);
      const body = JSON.parse(res.body) as { machine_id: string; hello: string; client_ip: string };
      expect(body.hello).toBe("e2e");
      expect(body.client_ip).toBe("127.0.0.1");
      expect(res.headers["fly-request-id"]).toBeTruthy();
      seen.add(body.machine_id);
    }
    expect([...seen].sort()).toEqual([...ids].sort());
  });

  it("stops a machine, waits for stopped, starts it, waits for started", async () => {
    const id = ids[0] as string;
    const stop = await p.api.call("POST", `/apps/${app}/machines/${id}/stop`, {
      signal: "SIGTERM",
      timeout: "5s",
    });
    expect(stop.status).toBe(200);
    await waitState(app, id, "stopped");
    const stopped = await p.api.ok<Machine>("GET", `/apps/${app}/machines/${id}`);
    expect(stopped.state).toBe("stopped");
    expect((await p.api.call("POST", `/apps/${app}/machines/${id}/start`)).status).toBe(200);
    await waitState(app, id, "started");
    const events = await p.api.ok<Array<{ type: string; status: string }>>(
      "GET",
      `/apps/${app}/machines/${id}/events`,
    );
    expect(events.map((e) => e.status)).toEqual(
      expect.arrayContaining(["created", "started", "stopping", "stopped"]),
    );
  });

  it("destroys a machine, and it no longer gets traffic", async () => {
    const id = ids[1] as string;
    expect((await p.api.call("DELETE", `/apps/${app}/machines/${id}?force=true`)).status).toBe(200);
    await waitState(app, id, "destroyed");
    // Still answered, destroyed, as Fly's API does (a client reads an auto_destroy machine's exit
    // there); a command on it is not found.
    expect(await p.api.ok<{ state: string }>("GET", `/apps/${app}/machines/${id}`)).toMatchObject({
      state: "destroyed",
    });
    expect((await p.api.call("POST", `/apps/${app}/machines/${id}/start`)).status).toBe(404);
    for (let i = 0; i < 20; i++) {
      const res = await viaProxy(p, app);
      expect(res.status).toBe(200);
      expect((JSON.parse(res.body) as { machine_id: string }).machine_id).not.toBe(id);
    }
  });

  it("refuses a machine larger than any host with insufficient_capacity, creating nothing", async () => {
    const before = (await p.api.ok<Machine[]>("GET", `/apps/${app}/machines`)).length;
    const res = await p.api.call<{ error: string; status: string }>("POST", `/apps/${app}/machines`, {
      config: helloConfig({ guest: { cpu_kind: "shared", cpus: 1, memory_mb: 1024 * 1024 } }),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.status).toBe("insufficient_capacity");
    expect(res.body.error).toMatch(/larger than any host/);
    expect((await p.api.ok<Machine[]>("GET", `/apps/${app}/machines`)).length).toBe(before);
  });

  it("answers bad requests in Fly's error shape and creates nothing", async () => {
    const before = (await p.api.ok<Machine[]>("GET", `/apps/${app}/machines`)).length;
    const malformed = await p.api.call<{ error: string; status: string }>(
      "POST",
      `/apps/${app}/machines`,
      undefined,
      {
        raw: '{"config": {',
      },
    );
    expect(malformed.status).toBe(400);
    expect(typeof malformed.body.error).toBe("string");
    const wrongType = await p.api.call<{ error: string }>("POST", `/apps/${app}/machines`, {
      config: helloConfig({ guest: { cpus: "many" } }),
    });
    expect([400, 422]).toContain(wrongType.status);
    expect(wrongType.body.error).toMatch(/guest\.cpus/);
    const id = ids[2] as string;
    const badSignal = await p.api.call<{ error: string }>("POST", `/apps/${app}/machines/${id}/signal`, {
      signal: "SIGBOGUS",
    });
    expect([400, 422]).toContain(badSignal.status);
    expect(badSignal.body.error).toMatch(/signal/i);
    const unauthorized = await p.api.call("GET", "/apps?org_slug=personal", undefined, { token: "wrong" });
    expect(unauthorized.status).toBe(401);
    expect((await p.api.ok<Machine[]>("GET", `/apps/${app}/machines`)).length).toBe(before);
  });

  it("the proxy answers 404 for an unknown app and 503 for an app with no started machine", async () => {
    expect((await viaProxy(p, "nope")).status).toBe(404);
    await p.api.ok("POST", "/apps", { app_name: "idle", org_slug: "personal" });
    let res = await viaProxy(p, "idle");
    for (let i = 0; i < 50 && res.status === 404; i++) res = await viaProxy(p, "idle");
    expect(res.status).toBe(503);
    expect(res.body).toMatch(/no .*machine/i);
  });

  it("the monitor counts machines by state", async () => {
    const res = await fetch(`${p.monitorUrl}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/hangar_machines\{[^}]*app="hello"[^}]*state="started"[^}]*\} 2/);
    expect(text).toMatch(/hangar_machines\{[^}]*app="hello"[^}]*state="destroyed"[^}]*\} 1/);
    expect(text).toMatch(/hangar_machine_create_to_started_seconds_count\{[^}]*\} [1-9]/);
  });
});

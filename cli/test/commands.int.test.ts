import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeApi, fakeMachine } from "./fake-api.js";
import { runCliIn } from "./run-cli.js";

// The commands in this process (runCli with captured output) against a stand-in for the HTTP API:
// the request each one sends and what it prints. cli.int.test.ts runs the CLI as a real process.

const TOKEN = "test-token";
let api: FakeApi;
let home: string;

function hangar(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCliIn(home, args);
}

beforeAll(async () => {
  api = await FakeApi.start(TOKEN);
  home = await mkdtemp(join(tmpdir(), "hangar-cli-commands-"));
  await mkdir(home, { recursive: true });
  const local = { api_url: api.url, token: TOKEN, proxy_url: "http://localhost:18080" };
  await writeFile(join(home, "local.json"), JSON.stringify(local));
});

afterAll(async () => {
  await api?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

describe("errors", () => {
  it("suggests creating an app that does not exist", async () => {
    const res = await hangar(["machine", "list", "-a", "nosuchapp"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      "Error: app not found\napp nosuchapp not found: create it with `hangar apps create nosuchapp`\n",
    );
  });

  it("says no host has room on insufficient_capacity", async () => {
    const body = { error: "no host can fit 16 cpus", status: "insufficient_capacity" };
    api.reply("POST", "/apps/full/machines", body, 412);
    const res = await hangar(["machine", "run", "nginx", "-a", "full", "--cpus", "16"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^Error: no host can fit 16 cpus\nno host has room for this machine/);
  });

  it("reports a machine that fails to start, with where to look", async () => {
    api.reply("POST", "/apps/broken/machines", fakeMachine("m3"));
    const failure = { error: "machine m3 stopped: exit code 1", status: "unknown" };
    api.reply("GET", "/apps/broken/machines/m3/wait", failure, 400);
    const res = await hangar(["machine", "run", "busybox", "-a", "broken"]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("Machine m3 created in region local, waiting for it to start... failed\n");
    expect(res.stderr).toBe(
      "Error: machine m3 stopped: exit code 1\nsee what it printed with `hangar logs -a broken --machine m3`, and its events with `hangar machine status m3 -a broken`\n",
    );
  });

  it("exits 2 on a usage error, before calling the API", async () => {
    const before = api.requests.length;
    const res = await hangar(["machine", "list", "--no-such-flag"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("unknown option '--no-such-flag'");
    expect(api.requests.length).toBe(before);
  });

  it("asks for an app when neither -a nor a config file names one, before calling the API", async () => {
    const before = api.requests.length;
    const res = await hangar(["machine", "list"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("no app given and no hangar.toml or fly.toml found");
    expect(api.requests.length).toBe(before);
  });

  it("logs reads through the API with the token, never NATS", async () => {
    const entry = {
      timestamp: "2026-12-04T12:00:00.000Z",
      message: "hi",
      level: "info",
      instance: "m1",
      region: "local",
    };
    api.reply("GET", "/apps/web/logs", entry);
    const res = await hangar(["logs", "-a", "web", "--no-tail"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe("2026-12-04T12:00:00.000Z app[m1] local [info] hi\n");
    expect(api.seen("GET", "/apps/web/logs").at(-1)).toMatchObject({
      query: { no_tail: "true" },
      authorization: `Bearer ${TOKEN}`,
    });
  });

  it("rejects a path that is not a folder without calling the API", async () => {
    const before = api.requests.length;
    const res = await hangar(["machine", "run", "./nope", "-a", "web"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^Error: \.\/nope is not a folder\n/);
    expect(api.requests.length).toBe(before);
  });
});

describe("machine", () => {
  it("run --json --detach prints the created machine alone on stdout and does not wait", async () => {
    const created = fakeMachine("m2", { state: "created", config: { image: "redis" } });
    api.reply("POST", "/apps/api/machines", created);
    const res = await hangar([
      "machine",
      "run",
      "redis",
      "-a",
      "api",
      "-d",
      "--json",
      "-r",
      "eu",
      "--memory",
      "256",
    ]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual(created);
    expect(res.stderr).toBe("Machine m2 created in region local\n");
    expect(api.seen("POST", "/apps/api/machines")[0]?.body).toEqual({
      region: "eu",
      config: { image: "redis", guest: { memory_mb: 256 } },
    });
    expect(api.seen("GET", "/apps/api/machines/m2/wait")).toEqual([]);
  });

  it("run --json waits, then prints the machine as it is now", async () => {
    api.reply("POST", "/apps/json/machines", fakeMachine("j1", { state: "created" }));
    api.reply("GET", "/apps/json/machines/j1/wait", { ok: true });
    api.reply("GET", "/apps/json/machines/j1", fakeMachine("j1", { state: "started" }));
    const res = await hangar(["machine", "run", "nginx", "-a", "json", "--json", "--restart", "always"]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ id: "j1", state: "started" });
    expect(res.stderr).toBe("Machine j1 created in region local, waiting for it to start... started\n");
    expect(api.seen("POST", "/apps/json/machines")[0]?.body).toEqual({
      config: { image: "nginx", restart: { policy: "always" } },
    });
  });

  it("list prints a table, filtered by state, and asks the API for the region", async () => {
    const now = new Date().toISOString();
    api.reply("GET", "/apps/list/machines", [
      fakeMachine("aaa111", { updated_at: now }),
      fakeMachine("bbb", { state: "stopped", name: "other", config: { image: "dir:/srv/app" } }),
      fakeMachine("ccc222", { name: "x", updated_at: now }),
    ]);
    const res = await hangar(["machine", "list", "-a", "list", "--state", "started", "--region", "local"]);
    expect(res.code).toBe(0);
    const lines = res.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe("ID      NAME         STATE    REGION  IMAGE       UPDATED");
    expect(lines[1]).toMatch(/^aaa111 {2}name-aaa111 {2}started {2}local {3}nginx:1\.27 {2}\d+s ago$/);
    expect(lines[2]).toMatch(/^ccc222 {2}x {12}started {2}local {3}nginx:1\.27 {2}\d+s ago$/);
    expect(api.seen("GET", "/apps/list/machines")[0]?.query).toEqual({ region: "local" });
    const json = await hangar(["machine", "list", "-a", "list", "--json", "--state", "stopped"]);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ id: "bbb" })]);
  });

  it("stop sends the signal and timeout, then waits for stopped long enough for the kill timeout", async () => {
    api.reply("POST", "/apps/web/machines/m1/stop", {});
    api.reply("GET", "/apps/web/machines/m1/wait", { ok: true });
    const res = await hangar(["machine", "stop", "m1", "-a", "web", "--signal", "SIGINT", "--timeout", "65"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toBe("Machine m1 stopping... stopped\n");
    expect(api.seen("POST", "/apps/web/machines/m1/stop")[0]?.body).toEqual({
      signal: "SIGINT",
      timeout: "65s",
    });
    const wait = api.seen("GET", "/apps/web/machines/m1/wait")[0];
    expect(wait?.query).toEqual({ state: "stopped", timeout: "60" });
  });

  it("start and restart wait for started; --no-wait does not", async () => {
    api.reply("POST", "/apps/web/machines/m5/start", {});
    api.reply("POST", "/apps/web/machines/m5/restart", {});
    api.reply("GET", "/apps/web/machines/m5/wait", { ok: true });
    expect((await hangar(["machine", "start", "m5", "-a", "web"])).stdout).toBe(
      "Machine m5 starting... started\n",
    );
    expect((await hangar(["machine", "restart", "m5", "-a", "web", "--timeout", "10s"])).stdout).toBe(
      "Machine m5 restarting... started\n",
    );
    expect(api.seen("POST", "/apps/web/machines/m5/restart")[0]?.query).toEqual({ timeout: "10s" });
    expect(api.seen("GET", "/apps/web/machines/m5/wait").map((w) => w.query.state)).toEqual([
      "started",
      "started",
    ]);
    expect((await hangar(["machine", "start", "m5", "-a", "web", "--no-wait"])).stdout).toBe(
      "Machine m5 starting\n",
    );
    expect(api.seen("GET", "/apps/web/machines/m5/wait")).toHaveLength(2);
  });

  it("status shows the machine with its events, as JSON and as text", async () => {
    const config = {
      image: "nginx",
      env: { A: "1" },
      guest: { cpus: 1, cpu_kind: "shared", memory_mb: 256 },
    };
    api.reply("GET", "/apps/web/machines/m9", fakeMachine("m9", { config }));
    const events = [
      {
        id: "e1",
        type: "launch",
        status: "created",
        source: "user",
        timestamp: Date.parse("2025-01-31T12:00:00Z"),
      },
      {
        id: "e2",
        type: "start",
        status: "started",
        source: "flyd",
        timestamp: Date.parse("2025-01-31T12:00:05Z"),
      },
    ];
    api.reply("GET", "/apps/web/machines/m9/events", events);
    const json = await hangar(["machine", "status", "m9", "-a", "web", "--json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: "m9", state: "started", events });
    const text = await hangar(["machine", "status", "m9", "-a", "web"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("Machine m9 (name-m9)\n  State:     started\n  Region:    local\n");
    expect(text.stdout).toContain("\nConfig\n  Guest:  1 shared cpu, 256 MB\n  Env:    A=1\n");
    expect(text.stdout).toContain(
      [
        "Recent events",
        "TIME                      TYPE    STATUS   SOURCE",
        "2025-01-31T12:00:05.000Z  start   started  flyd",
        "2025-01-31T12:00:00.000Z  launch  created  user",
        "",
      ].join("\n"),
    );
  });

  it("destroy sends force", async () => {
    api.reply("DELETE", "/apps/web/machines/m1", {});
    const res = await hangar(["machine", "destroy", "m1", "-a", "web", "--force"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe("Machine m1 destroyed\n");
    expect(api.seen("DELETE", "/apps/web/machines/m1")[0]?.query).toEqual({ force: "true" });
  });
});

describe("apps and status", () => {
  it("creates and destroys an app", async () => {
    api.reply("POST", "/apps", undefined, 201);
    api.reply("DELETE", "/apps/shop", undefined, 202);
    const created = await hangar(["apps", "create", "shop", "--org", "acme"]);
    expect(created.stdout).toBe("App shop created in organization acme\n");
    expect(api.seen("POST", "/apps").at(-1)?.body).toEqual({ app_name: "shop", org_slug: "acme" });
    const destroyed = await hangar(["apps", "destroy", "shop", "--yes"]);
    expect(destroyed.stdout).toBe("App shop destroyed\n");
    expect(api.seen("DELETE", "/apps/shop")).toHaveLength(1);
  });

  it("status shows the app, its URL, its machines and the autoscaler's decisions", async () => {
    api.reply("GET", "/apps/shop", {
      id: "shop",
      name: "shop",
      organization: { slug: "acme" },
      status: "deployed",
    });
    api.reply("GET", "/apps/shop/machines", [fakeMachine("m1"), fakeMachine("m2", { state: "stopped" })]);
    api.reply("GET", "/apps/shop/scaling", {
      app: "shop",
      panic: false,
      panic_since: null,
      decisions_total: 1,
      decisions: [
        {
          id: "d1",
          decided_at: new Date(Date.now() - 5_000).toISOString(),
          current: 1,
          desired: 2,
          reason: "max 30 connections over 6 s / soft_limit 20 = 2 > 1 running",
          inputs: { panic_concurrency: 30, soft_limit: 20 },
          actions: [{ kind: "start", machine_id: "m2", region: "local", outcome: "done", message: "" }],
        },
      ],
    });
    const res = await hangar(["status", "-a", "shop"]);
    expect(res.code).toBe(0);
    const lines = res.stdout.split("\n");
    expect(lines.slice(0, 8)).toEqual([
      "App",
      "  Name:          shop",
      "  Organization:  acme",
      "  Status:        deployed",
      "  URL:           http://shop.localhost:18080",
      "",
      "Machines",
      "ID  NAME     STATE    REGION  IMAGE       UPDATED",
    ]);
    expect(lines[9]).toMatch(/^m2 {2}name-m2 {2}stopped {2}local {3}nginx:1\.27 {2}\d+d ago$/);
    expect(lines.slice(11, 14)).toEqual([
      "Autoscaling",
      "  Mode:  stable",
      "WHEN    MACHINES  ACTIONS   WHY",
    ]);
    expect(lines[14]).toBe(
      "5s ago  1 -> 2    start m2  max 30 connections over 6 s / soft_limit 20 = 2 > 1 running",
    );
    expect(api.seen("GET", "/apps/shop/scaling").at(-1)?.query).toEqual({ limit: "20" });
    const json = await hangar(["status", "-a", "shop", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      app: { name: "shop" },
      machines: [{ id: "m1" }, { id: "m2" }],
      scaling: { decisions: [{ id: "d1", actions: [{ kind: "start", machine_id: "m2" }] }] },
    });
  });
});

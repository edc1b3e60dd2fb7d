// Issue 19, acceptance 4, with the real CLI against a whole platform of two hosts (the second the only
// one in region r2): `hangar launch` deploys an app with `web` and `worker` process groups (only web has
// an [http_service]; the image is examples/hello run as a dir: image, so nothing is built). Then
// `hangar scale count 3 --process-group worker` gives exactly 3 workers and leaves web alone, and no
// request through the proxy reaches a worker; `scale count 2 --region r2` puts two web machines on the
// r2 host and leaves region local as it was; `scale vm`, `machine clone`, `machine update` and
// `apps restart` change what they say, and bad input fails with a message and no change.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, runHangar } from "../../cli/test/run-cli.js";
import type { HostAgentHandle } from "../../scripts/platform.js";
import { listMachineIds } from "../../services/host-agent/src/driver/state.js";
import { type ApiVolume, sh } from "../volumes/volume-app.js";
import { helloConfig, helloDir, startTestPlatform, type TestPlatform, viaProxy } from "./harness.js";

const APP = "groups";
let p: TestPlatform;
let r2: HostAgentHandle;
let dir: string;

interface ApiMachine {
  id: string;
  state: string;
  region: string;
  config: {
    image: string;
    guest?: { cpu_kind?: string; cpus?: number; memory_mb?: number };
    services?: unknown[];
    metadata?: Record<string, string>;
    init?: { cmd?: string[] };
  };
  events?: { id: string; type: string; status: string }[];
}

beforeAll(async () => {
  p = await startTestPlatform({ hosts: 2 });
  // The second host is the only one in region r2: a machine created there lands on it.
  r2 = await p.startHostAgent(1, { HANGAR_REGION: "r2" });
  const work = mkdtempSync(join(tmpdir(), "hangar-scale-"));
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  // examples/hello (package.json and server.js), with a fly.toml whose [build] image is the folder
  // itself as a dir: image, so that launch deploys it without a build.
  dir = join(work, APP);
  cpSync(helloDir, dir, { recursive: true });
  writeFileSync(
    join(dir, "fly.toml"),
    [
      `app = "${APP}"`,
      `primary_region = "local"`,
      "",
      "[build]",
      `  image = "dir:${helloDir}"`,
      "",
      "[processes]",
      `  web = "node server.js"`,
      `  worker = "node server.js"`,
      "",
      // As `fly launch` runs it: once, on launch's deploy, after the release_command; not on later deploys.
      "[deploy]",
      `  seed_command = "node -e \\"console.log('seeded ' + process.env.RELEASE_COMMAND)\\""`,
      "",
      "[http_service]",
      "  internal_port = 8080",
      `  processes = ["web"]`,
      `  auto_stop_machines = "off"`,
      "  auto_start_machines = false",
      "  min_machines_running = 1",
      "",
    ].join("\n"),
  );
}, 180_000);

afterAll(async () => {
  await p?.close();
  if (dir) rmSync(join(dir, ".."), { recursive: true, force: true });
}, 120_000);

function hangar(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  return runHangar(args, { cwd: dir, env: { HANGAR_HOME: p.home }, timeoutMs });
}

async function ok(args: string[], timeoutMs?: number): Promise<string> {
  const res = await hangar(args, timeoutMs);
  expect(res.code, `hangar ${args.join(" ")}:\n${res.stdout}${res.stderr}`).toBe(0);
  return res.stdout;
}

/** The app's machines, but for those a release ran a command in (launch's seed_command: kept, stopped, a while after). */
async function machines(): Promise<ApiMachine[]> {
  const all = await p.api.ok<ApiMachine[]>("GET", `/apps/${APP}/machines`);
  return all.filter(
    (m) =>
      m.state !== "destroyed" &&
      m.state !== "destroying" &&
      m.config.metadata?.hangar_release_command === undefined,
  );
}

const inGroup = (ms: ApiMachine[], group: string) =>
  ms.filter((m) => m.config.metadata?.fly_process_group === group);

async function waitStarted(ids: string[]): Promise<void> {
  for (const id of ids) {
    const res = await p.api.call("GET", `/apps/${APP}/machines/${id}/wait?state=started&timeout=60`);
    expect(res.status, `${id}: ${JSON.stringify(res.body)}`).toBe(200);
  }
}

describe("process groups and hangar scale", () => {
  let web: ApiMachine;

  it("launch creates the app and deploys it: one web and one worker machine of release 1", async () => {
    const out = await ok(["launch", "--name", APP], 180_000);
    expect(out).toContain(`Created app ${APP}`);
    expect(out).toMatch(/Running the seed_command in machine \w+/);
    expect(out).toContain("seeded 1");
    expect(out).toContain("seed_command exited with code 0");
    expect(out).toContain("Release v1 is live on 2 machines");
    const ms = await machines();
    expect(inGroup(ms, "web")).toHaveLength(1);
    expect(inGroup(ms, "worker")).toHaveLength(1);
    web = inGroup(ms, "web")[0] as ApiMachine;
    expect(web.config.services).toHaveLength(1);
    expect(inGroup(ms, "worker")[0]?.config.services ?? []).toEqual([]);
    for (const m of ms) expect(m.config.metadata?.hangar_release).toBe("1");
  });

  it("refuses a count without a group (the app has two), an unknown group and a count that is not one", async () => {
    const before = (await machines()).map((m) => m.id).sort();
    const noGroup = await hangar(["scale", "count", "3", "-y"]);
    expect(noGroup.code).toBe(1);
    expect(noGroup.stderr).toContain("the app has several process groups (web, worker)");
    expect(noGroup.stderr).toContain("--process-group");
    const unknown = await hangar(["scale", "count", "3", "--process-group", "jobs", "-y"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(
      "process group jobs is not one of the app's process groups (web, worker)",
    );
    const notCount = await hangar(["scale", "count", "three", "--process-group", "web", "-y"]);
    expect(notCount.code).not.toBe(0);
    expect(notCount.stderr).toContain("expected the number of machines");
    const noYes = await hangar(["scale", "count", "3", "--process-group", "worker"]);
    expect(noYes.code).toBe(1);
    expect(noYes.stderr).toContain("pass --yes");
    expect((await machines()).map((m) => m.id).sort()).toEqual(before);
  });

  it("scale count 3 --process-group worker gives exactly 3 workers, copies of the first, and leaves web alone", async () => {
    const out = await ok(["scale", "count", "3", "--process-group", "worker", "-y", "--json"]);
    const result = JSON.parse(out) as { created: string[]; destroyed: string[]; plan: unknown[] };
    expect(result.created).toHaveLength(2);
    expect(result.destroyed).toEqual([]);
    expect(result.plan).toEqual([{ region: "local", delta: 2 }]);
    await waitStarted(result.created);
    const ms = await machines();
    const workers = inGroup(ms, "worker");
    expect(workers).toHaveLength(3);
    expect(inGroup(ms, "web").map((m) => m.id)).toEqual([web.id]);
    for (const w of workers) {
      expect(w.config.metadata).toMatchObject({ fly_process_group: "worker", hangar_release: "1" });
      expect(w.config.services ?? []).toEqual([]);
      expect(w.config.init?.cmd).toEqual(["node", "server.js"]);
    }
    // Running again changes nothing.
    const again = await ok(["scale", "count", "3", "--process-group", "worker", "-y"]);
    expect(again).toContain("App already scaled to desired state");
  });

  it("sends no request through the proxy to a worker, though each listens on the port web does", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const res = await viaProxy(p, APP);
      expect(res.status, res.body).toBe(200);
      seen.add((JSON.parse(res.body) as { machine_id: string }).machine_id);
    }
    expect([...seen]).toEqual([web.id]);
  });

  it("scale count 2 --region r2 places two web machines on the r2 host and leaves region local as it was", async () => {
    const before = (await machines()).filter((m) => m.region === "local").map((m) => m.id);
    const out = await ok(["scale", "count", "2", "--region", "r2", "--process-group", "web", "-y", "--json"]);
    const result = JSON.parse(out) as { created: string[]; plan: unknown[] };
    expect(result.plan).toEqual([{ region: "r2", delta: 2 }]);
    await waitStarted(result.created);
    const ms = await machines();
    const inR2 = ms.filter((m) => m.region === "r2");
    expect(inR2.map((m) => m.id).sort()).toEqual([...result.created].sort());
    for (const m of inR2) expect(m.config.metadata?.fly_process_group).toBe("web");
    expect(
      ms
        .filter((m) => m.region === "local")
        .map((m) => m.id)
        .sort(),
    ).toEqual(before.sort());
    // On the second host, and not on the first.
    expect(await listMachineIds(r2.hostStateDir)).toEqual(expect.arrayContaining(result.created));
    const local = await listMachineIds(p.hostStateDir);
    for (const id of result.created) expect(local).not.toContain(id);
  });

  it("scale vm resizes every worker and nothing else; a size flyctl does not know is refused", async () => {
    const bad = await hangar(["scale", "vm", "huge-1x", "--process-group", "worker"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("huge-1x is not a VM size");
    const webBefore = inGroup(await machines(), "web").map((m) => [m.id, m.config.guest]);
    await ok(["scale", "vm", "shared-cpu-2x", "--memory", "1024", "--process-group", "worker"]);
    const ms = await machines();
    for (const w of inGroup(ms, "worker")) {
      expect(w.state).toBe("started");
      expect(w.config.guest).toMatchObject({ cpu_kind: "shared", cpus: 2, memory_mb: 1024 });
    }
    expect(inGroup(ms, "web").map((m) => [m.id, m.config.guest])).toEqual(webBefore);
  });

  it("scale count 1 --process-group worker destroys two workers", async () => {
    const out = await ok(["scale", "count", "1", "--process-group", "worker", "-y", "--json"]);
    const result = JSON.parse(out) as { created: string[]; destroyed: string[] };
    expect(result.created).toEqual([]);
    expect(result.destroyed).toHaveLength(2);
    expect(inGroup(await machines(), "worker")).toHaveLength(1);
  });

  it("a read-only token may show the groups but not scale them: refused, nothing created", async () => {
    const minted = await p.api.call<{ token: string }>("POST", "/tokens", {
      kind: "readonly",
      org: "personal",
    });
    expect(minted.status).toBe(201);
    const env = {
      HANGAR_HOME: join(p.home, "no-local-json"),
      HANGAR_API_URL: p.apiUrl,
      HANGAR_API_TOKEN: minted.body.token,
    };
    const as = (args: string[]) => runHangar(args, { cwd: dir, env, timeoutMs: 60_000 });
    const before = (await machines()).map((m) => m.id).sort();
    const show = await as(["scale", "show", "--json"]);
    expect(show.code, show.stderr).toBe(0);
    expect((JSON.parse(show.stdout) as { Process: string }[]).map((g) => g.Process)).toEqual([
      "web",
      "worker",
    ]);
    const refused = await as(["scale", "count", "4", "--process-group", "worker", "-y"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/forbidden|read-only|not allowed/i);
    expect((await machines()).map((m) => m.id).sort()).toEqual(before);
  });

  it("machine clone makes a machine with the source's config in another region; machine update changes its memory", async () => {
    const [worker] = inGroup(await machines(), "worker");
    const out = await ok(["machine", "clone", worker?.id as string, "--region", "r2", "--json"]);
    const clone = JSON.parse(out) as ApiMachine;
    expect(clone.id).not.toBe(worker?.id);
    expect(clone.region).toBe("r2");
    expect(clone.state).toBe("started");
    expect(clone.config.metadata).toEqual(worker?.config.metadata);
    expect(clone.config.guest).toEqual(worker?.config.guest);
    expect(clone.config.init).toEqual(worker?.config.init);

    const updated = JSON.parse(
      await ok(["machine", "update", clone.id, "--memory", "2048", "-y", "--json"]),
    ) as ApiMachine;
    expect(updated.state).toBe("started");
    expect(updated.config.guest).toMatchObject({ cpus: 2, memory_mb: 2048 });
  });

  it("machine clone of a machine with a volume gives the clone a new empty volume of the same name and size", async () => {
    const vols = "groups-vols";
    await p.api.ok("POST", "/apps", { app_name: vols, org_slug: "personal" });
    const vol = await p.api.ok<{ id: string }>("POST", `/apps/${vols}/volumes`, {
      name: "data",
      size_gb: 2,
      region: "local",
    });
    const source = await p.api.ok<ApiMachine>("POST", `/apps/${vols}/machines`, {
      config: helloConfig({ mounts: [{ volume: vol.id, path: "/data" }] }),
    });
    const wait = await p.api.call("GET", `/apps/${vols}/machines/${source.id}/wait?state=started&timeout=60`);
    expect(wait.status, JSON.stringify(wait.body)).toBe(200);
    await sh(p, vols, source.id, "echo source > /data/marker");

    const clone = JSON.parse(
      await ok(["machine", "clone", source.id, "-a", vols, "--json"]),
    ) as ApiMachine & {
      config: { mounts?: { volume: string; path: string }[] };
    };
    const mount = clone.config.mounts?.[0];
    expect(mount?.path).toBe("/data");
    expect(mount?.volume).not.toBe(vol.id);
    const fresh = await p.api.ok<ApiVolume>("GET", `/apps/${vols}/volumes/${mount?.volume}`);
    expect(fresh).toMatchObject({ name: "data", size_gb: 2, region: "local", attached_machine_id: clone.id });
    expect(await sh(p, vols, clone.id, "ls -A /data | grep -v lost+found || true")).toBe("");
    expect(await sh(p, vols, source.id, "cat /data/marker")).toBe("source\n");
  });

  it("apps restart restarts every running machine, one at a time", async () => {
    const ms = await machines();
    const result = JSON.parse(await ok(["apps", "restart", "--json"], 180_000)) as { restarted: string[] };
    expect([...result.restarted].sort()).toEqual(ms.map((m) => m.id).sort());
    for (const m of await machines()) {
      expect(m.state).toBe("started");
      const events = await p.api.ok<{ type: string; status: string }[]>(
        "GET",
        `/apps/${APP}/machines/${m.id}/events`,
      );
      expect(events.filter((e) => e.type === "restart" && e.status === "stopping")).toHaveLength(1);
    }
  });

  it("a deploy replaces each group's machines region by region: the machines scaled into r2 stay in r2", async () => {
    const spread = (ms: ApiMachine[]) =>
      ["web", "worker"].map(
        (g) =>
          `${g}: ${inGroup(ms, g)
            .map((m) => m.region)
            .sort()
            .join(",")}`,
      );
    const before = await machines();
    expect(before.some((m) => m.region === "r2")).toBe(true);
    const out = await ok(["deploy", "--strategy", "bluegreen"], 240_000);
    const after = await machines();
    expect(spread(after)).toEqual(spread(before));
    expect(after.map((m) => m.id).filter((id) => before.some((b) => b.id === id))).toEqual([]);
    // A deploy is not a launch: the seed_command ran once, for v1.
    expect(out).not.toContain("seed_command");
    const ever = await p.api.ok<ApiMachine[]>("GET", `/apps/${APP}/machines?include_deleted=true`);
    const seeds = ever.filter((m) => m.config.metadata?.hangar_command === "seed");
    expect(seeds.map((m) => m.config.metadata?.hangar_release_command)).toEqual(["1"]);
    const releases = await p.api.ok<{ version: number; seed: boolean; seed_command: unknown }[]>(
      "GET",
      `/apps/${APP}/releases`,
    );
    expect(releases.find((r) => r.version === 1)).toMatchObject({
      seed: true,
      seed_command: { exit_code: 0, error: null },
    });
    expect(releases.filter((r) => r.version > 1).every((r) => !r.seed && r.seed_command === null)).toBe(true);
  });
});

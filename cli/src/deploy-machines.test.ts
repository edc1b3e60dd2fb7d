import { parseAppConfig } from "@hangar/config";
import { describe, expect, it } from "vitest";
import { ApiError } from "./api.js";
import { type DeployApi, deployRelease, planReplacement } from "./deploy-machines.js";
import type {
  CheckStatus,
  CreateMachineRequest,
  CreateVolumeRequest,
  Machine,
  UpdateReleaseRequest,
  Volume,
} from "./types.js";

// Unit tests of the immediate and rolling strategies' decisions, against an in-memory stand-in for the API: which
// machines are created, which are destroyed on success and on failure, and what the release is marked.

const APP = "web";
const IMAGE = "registry.local/web@sha256:abc";

const config = (text: string) => parseAppConfig(text, "hangar.toml").config;

const WITH_CHECK = config(`app = "web"
primary_region = "local"
[http_service]
  internal_port = 8080
  [[http_service.checks]]
    path = "/"
`);

/** How a new machine behaves once created: the states and checks GET shows, one per poll. */
type Script = (poll: number) => { state: string; checks?: CheckStatus[] };

class FakeDeployApi implements DeployApi {
  machines = new Map<string, Machine>();
  created: CreateMachineRequest[] = [];
  destroyed: string[] = [];
  releases: { version: number; body: UpdateReleaseRequest }[] = [];
  updated: { id: string; body: CreateMachineRequest }[] = [];
  volumes: Volume[] = [];
  createdVolumes: CreateVolumeRequest[] = [];
  /** How many times each new machine had been read when the first machine was destroyed. */
  pollsAtFirstDestroy: Record<string, number> | undefined;
  private polls = new Map<string, number>();
  /** Machines that run the script when read: those created, and those updated in place. */
  private scripted = new Set<string>();
  private next = 0;

  constructor(
    private readonly script: Script,
    private readonly failCreateAfter = Number.POSITIVE_INFINITY,
  ) {}

  add(id: string, group?: string, state = "started", volume?: string): void {
    const metadata = group ? { fly_process_group: group } : undefined;
    const mounts = volume ? { mounts: [{ volume, name: "data", path: "/data" }] } : {};
    this.machines.set(id, {
      id,
      state,
      config: { image: "old", ...(metadata ? { metadata } : {}), ...mounts } as Machine["config"],
    });
  }

  addVolume(id: string, name: string, region = "local", attachedTo: string | null = null): void {
    this.volumes.push(volume(id, name, region, attachedTo));
  }

  async listVolumes(): Promise<Volume[]> {
    return this.volumes;
  }

  async createVolume(_app: string, body: CreateVolumeRequest): Promise<Volume> {
    this.createdVolumes.push(body);
    const created = {
      ...volume(`vol_new${this.createdVolumes.length}`, body.name, body.region ?? "local", null),
      size_gb: body.size_gb ?? 1,
    };
    this.volumes.push(created);
    return created;
  }

  async updateMachine(_app: string, id: string, body: CreateMachineRequest): Promise<Machine> {
    const machine = this.machines.get(id);
    if (!machine)
      throw new ApiError("machine not found", 404, "not_found", "POST", `/apps/${APP}/machines/${id}`);
    this.updated.push({ id, body });
    this.scripted.add(id);
    const replaced = { ...machine, state: "replacing", config: body.config };
    this.machines.set(id, replaced);
    return replaced;
  }

  async listMachines(): Promise<Machine[]> {
    return [...this.machines.values()];
  }

  async createMachine(_app: string, body: CreateMachineRequest): Promise<Machine> {
    if (this.created.length >= this.failCreateAfter) {
      throw new ApiError("no host has room", 412, "insufficient_capacity", "POST", `/apps/${APP}/machines`);
    }
    this.created.push(body);
    const id = `new${++this.next}`;
    this.scripted.add(id);
    const machine = { id, state: "created", region: body.region ?? "local", config: body.config };
    this.machines.set(id, machine);
    return machine;
  }

  async getMachine(_app: string, id: string): Promise<Machine> {
    const machine = this.machines.get(id);
    if (!machine)
      throw new ApiError("machine not found", 404, "not_found", "GET", `/apps/${APP}/machines/${id}`);
    if (!this.scripted.has(id)) return machine;
    const poll = this.polls.get(id) ?? 0;
    this.polls.set(id, poll + 1);
    return { ...machine, ...this.script(poll) };
  }

  async destroyMachine(_app: string, id: string): Promise<unknown> {
    this.pollsAtFirstDestroy ??= Object.fromEntries(this.polls);
    this.destroyed.push(id);
    this.machines.delete(id);
    return {};
  }

  async updateRelease(_app: string, version: number, body: UpdateReleaseRequest) {
    this.releases.push({ version, body });
    return { version, status: body.status };
  }
}

function volume(id: string, name: string, region: string, attachedTo: string | null): Volume {
  return {
    id,
    name,
    state: "created",
    size_gb: 1,
    region,
    zone: "host-1",
    encrypted: false,
    fstype: "ext4",
    created_at: "2026-12-05T00:00:00Z",
    snapshot_retention: 5,
    attached_machine_id: attachedTo,
    attached_alloc_id: attachedTo,
    block_size: 4096,
    blocks: 0,
    blocks_free: 0,
    blocks_avail: 0,
  };
}

/** The mounts of a create or update request's config. */
function mountsOf(body: CreateMachineRequest | undefined): { volume?: string }[] | undefined {
  return (body?.config as { mounts?: { volume?: string }[] } | undefined)?.mounts;
}

const passing: CheckStatus[] = [{ name: "servicecheck-0-0", status: "passing" }];

async function run(
  api: FakeDeployApi,
  appConfig = WITH_CHECK,
  waitTimeoutMs = 2_000,
  strategy: "immediate" | "rolling" = "immediate",
) {
  const lines: string[] = [];
  const result = await deployRelease({
    strategy,
    api,
    app: APP,
    config: appConfig,
    image: IMAGE,
    release: 7,
    waitTimeoutMs,
    pollMs: 5,
    progress: (text) => lines.push(text),
  });
  return { result, lines };
}

describe("planReplacement", () => {
  it("replaces as many machines per group as run now, at least one, and leaves unmanaged ones alone", () => {
    const m = (id: string, group?: string, state = "started"): Machine => ({
      id,
      state,
      config: group ? { metadata: { fly_process_group: group } } : {},
    });
    const multi = config('[processes]\n  web = "node web.js"\n  worker = "node worker.js"\n');
    const plan = planReplacement(
      [m("a", "web"), m("b", "web"), m("c", "web", "destroyed"), m("d"), m("e", "old-group")],
      multi,
    );
    expect(plan.groups).toEqual([
      { group: "web", count: 2 },
      { group: "worker", count: 1 },
    ]);
    expect(plan.previous.map((x) => x.id)).toEqual(["a", "b", "e"]);
    expect(plan.unmanaged.map((x) => x.id)).toEqual(["d"]);
  });
});

describe("deployRelease (unit, in-memory API)", () => {
  it("destroys the previous machines only once the new ones are started and passing checks", async () => {
    const api = new FakeDeployApi((poll) =>
      poll < 2
        ? { state: "starting" }
        : poll < 4
          ? { state: "started", checks: [] }
          : { state: "started", checks: passing },
    );
    api.add("old1", "app");
    api.add("old2", "app");
    api.add("manual");
    const { result } = await run(api);
    expect(result).toMatchObject({ ok: true, destroyed: ["old1", "old2"], unmanaged: [{ id: "manual" }] });
    expect(api.created).toHaveLength(2);
    expect(api.created[0]).toMatchObject({
      region: "local",
      config: { image: IMAGE, metadata: { fly_process_group: "app", hangar_release: "7" } },
    });
    expect(api.destroyed.sort()).toEqual(["old1", "old2"]);
    // The script turns healthy on the 5th read.
    expect(api.pollsAtFirstDestroy).toEqual({ new1: 5, new2: 5 });
    expect(api.releases).toEqual([
      { version: 7, body: { status: "succeeded", machine_ids: ["new1", "new2"] } },
    ]);
  });

  it("creates one machine for an app that has none", async () => {
    const api = new FakeDeployApi(() => ({ state: "started", checks: passing }));
    const { result } = await run(api);
    expect(result.ok).toBe(true);
    expect(api.created).toHaveLength(1);
    expect(api.destroyed).toEqual([]);
  });

  it("destroys the NEW machines and keeps the old ones when a check stays failing", async () => {
    const critical = [{ name: "servicecheck-0-0", status: "critical", output: "connection refused" }];
    const api = new FakeDeployApi(() => ({ state: "started", checks: critical }));
    api.add("old1", "app");
    const { result } = await run(api, WITH_CHECK, 100);
    expect(result).toEqual({
      ok: false,
      reason: "check servicecheck-0-0 of machine new1 is critical: connection refused",
    });
    expect(api.destroyed).toEqual(["new1"]);
    expect(api.machines.has("old1")).toBe(true);
    expect(api.releases).toEqual([
      { version: 7, body: { status: "failed", reason: (result as { reason: string }).reason } },
    ]);
  });

  it("gives up at once on a machine that failed to start", async () => {
    const api = new FakeDeployApi(() => ({ state: "failed" }));
    api.add("old1", "app");
    const started = Date.now();
    const { result } = await run(api, WITH_CHECK, 30_000);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result).toEqual({ ok: false, reason: "machine new1 failed" });
    expect(api.destroyed).toEqual(["new1"]);
  });

  it("counts a machine whose checks never reported as unhealthy", async () => {
    const api = new FakeDeployApi(() => ({ state: "started", checks: [] }));
    const { result } = await run(api, WITH_CHECK, 50);
    expect(result).toEqual({ ok: false, reason: "machine new1 has reported 0 of its 1 checks" });
  });

  it("needs no check to pass when the config has none", async () => {
    const api = new FakeDeployApi(() => ({ state: "started" }));
    const { result } = await run(api, config('app = "web"\n'));
    expect(result.ok).toBe(true);
  });

  it("destroys the machines it created when a later one cannot be created", async () => {
    const api = new FakeDeployApi(() => ({ state: "started", checks: passing }), 1);
    api.add("old1", "app");
    api.add("old2", "app");
    const { result } = await run(api);
    expect(result).toEqual({
      ok: false,
      reason: "cannot create a machine for process group app: no host has room",
    });
    expect(api.destroyed).toEqual(["new1"]);
    expect([...api.machines.keys()]).toEqual(["old1", "old2"]);
    expect(api.releases[0]?.body.status).toBe("failed");
  });
});

describe("deployRelease, rolling (unit, in-memory API)", () => {
  it("replaces one machine at a time: each new one healthy before one previous one goes", async () => {
    const api = new FakeDeployApi((poll) =>
      poll < 2 ? { state: "starting" } : { state: "started", checks: passing },
    );
    api.add("old1", "app");
    api.add("old2", "app");
    api.add("old3", "app");
    api.add("manual");
    const order: string[] = [];
    const create = api.createMachine.bind(api);
    const destroy = api.destroyMachine.bind(api);
    api.createMachine = async (app, body) => {
      const m = await create(app, body);
      order.push(`create ${m.id}`);
      return m;
    };
    api.destroyMachine = async (app, id) => {
      order.push(`destroy ${id}`);
      return destroy(app, id);
    };
    const { result } = await run(api, WITH_CHECK, 2_000, "rolling");
    expect(result).toMatchObject({
      ok: true,
      destroyed: ["old1", "old2", "old3"],
      unmanaged: [{ id: "manual" }],
    });
    expect(order).toEqual([
      "create new1",
      "destroy old1",
      "create new2",
      "destroy old2",
      "create new3",
      "destroy old3",
    ]);
    expect(api.releases).toEqual([
      { version: 7, body: { status: "succeeded", machine_ids: ["new1", "new2", "new3"] } },
    ]);
  });

  it("stops at the first unhealthy machine: destroys it, keeps the machines not replaced yet", async () => {
    const critical = [{ name: "servicecheck-0-0", status: "critical", output: "connection refused" }];
    const api = new FakeDeployApi(() => ({ state: "started", checks: critical }));
    api.add("old1", "app");
    api.add("old2", "app");
    const { result } = await run(api, WITH_CHECK, 100, "rolling");
    expect(result).toEqual({
      ok: false,
      reason: "check servicecheck-0-0 of machine new1 is critical: connection refused",
    });
    expect(api.destroyed).toEqual(["new1"]);
    expect([...api.machines.keys()]).toEqual(["old1", "old2"]);
    expect(api.releases[0]?.body.status).toBe("failed");
  });
});

describe("deployRelease with [mounts] (unit, in-memory API)", () => {
  const WITH_MOUNT = config(`app = "web"
primary_region = "local"
[mounts]
  source = "data"
  destination = "/data"
  initial_size = "2gb"
  snapshot_retention = 7
`);
  const healthy = () => ({ state: "started", checks: [] });

  it("creates a volume of the mount's initial_size for a new machine, which mounts it by id", async () => {
    const api = new FakeDeployApi(healthy);
    const { result, lines } = await run(api, WITH_MOUNT);
    expect(result).toMatchObject({ ok: true, volumesCreated: ["vol_new1"] });
    expect(api.createdVolumes).toEqual([
      { name: "data", size_gb: 2, snapshot_retention: 7, region: "local" },
    ]);
    expect(mountsOf(api.created[0])).toEqual([{ name: "data", path: "/data", volume: "vol_new1" }]);
    expect(lines).toContain("Created volume vol_new1 (data, 2GB) in region local\n");
  });

  it("reuses an unattached volume of the name in the region, as flyctl does", async () => {
    const api = new FakeDeployApi(healthy);
    api.addVolume("vol_attached", "data", "local", "someone");
    api.addVolume("vol_elsewhere", "data", "other");
    api.addVolume("vol_free", "data", "local");
    const { result } = await run(api, WITH_MOUNT);
    expect(result).toMatchObject({ ok: true, volumesCreated: [] });
    expect(api.createdVolumes).toEqual([]);
    expect(mountsOf(api.created[0])?.[0]?.volume).toBe("vol_free");
  });

  it("updates a machine on a volume in place with the new image, keeping its volume", async () => {
    const api = new FakeDeployApi(healthy);
    api.add("old1", "app", "started", "vol_1");
    const { result } = await run(api, WITH_MOUNT);
    expect(result).toMatchObject({ ok: true, destroyed: [], volumesCreated: [] });
    expect(api.created).toEqual([]);
    expect(api.destroyed).toEqual([]);
    expect(api.updated.map((u) => u.id)).toEqual(["old1"]);
    const config = api.updated[0]?.body.config as { image?: string; mounts?: unknown };
    expect(config.image).toBe(IMAGE);
    expect(config.mounts).toEqual([{ name: "data", path: "/data", volume: "vol_1" }]);
    expect(api.releases).toEqual([{ version: 7, body: { status: "succeeded", machine_ids: ["old1"] } }]);
  });

  it("gives a machine updated in place its previous config back when it does not become healthy", async () => {
    const api = new FakeDeployApi(() => ({ state: "failed" }));
    api.add("old1", "app", "started", "vol_1");
    const before = api.machines.get("old1")?.config;
    const { result } = await run(api, WITH_MOUNT);
    expect(result).toEqual({ ok: false, reason: "machine old1 failed" });
    expect(api.updated.map((u) => u.id)).toEqual(["old1", "old1"]);
    expect(api.updated[1]?.body.config).toEqual(before);
    expect(api.destroyed).toEqual([]);
  });

  it("runs machine_checks against a machine updated in place, and gives it its config back when one fails", async () => {
    const WITH_CHECKS = config(`app = "web"
primary_region = "local"
[mounts]
  source = "data"
  destination = "/data"
[[machine_checks]]
  command = ["./smoke.sh"]
`);
    // A test machine (config.auto_destroy) ends at once, destroyed, with its exit event; the rest are healthy.
    const tests = (exitCode: number) => {
      const api = new FakeDeployApi(healthy);
      const get = api.getMachine.bind(api);
      api.getMachine = async (app, id) => {
        const m = await get(app, id);
        if (!m.config?.metadata?.hangar_machine_check) return { ...m, private_ip: "fdaa:0:1::7" };
        return {
          ...m,
          state: "destroyed",
          events: [{ type: "exit", timestamp: 1, request: { exit_event: { exit_code: exitCode } } }],
        };
      };
      api.add("old1", "app", "started", "vol_1");
      return api;
    };
    const good = tests(0);
    const { result, lines } = await run(good, WITH_CHECKS);
    expect(result).toMatchObject({ ok: true, destroyed: [] });
    const test = good.created[0]?.config as {
      auto_destroy?: boolean;
      init?: { cmd?: string[] };
      env?: Record<string, string>;
      metadata?: Record<string, string>;
    };
    expect(test).toMatchObject({
      auto_destroy: true,
      init: { cmd: ["./smoke.sh"] },
      env: {
        FLY_TEST_COMMAND: "1",
        FLY_PROCESS_GROUP: "fly_app_test_machine_command",
        FLY_TEST_MACHINE_IP: "fdaa:0:1::7",
      },
      metadata: { fly_process_group: "fly_app_test_machine_command", hangar_machine_check: "old1" },
    });
    expect(lines.join("")).toContain("Machine check 1 of 1 (./smoke.sh) on machine old1 passed");

    const bad = tests(3);
    const before = bad.machines.get("old1")?.config;
    const failed = await run(bad, WITH_CHECKS);
    expect(failed.result).toEqual({
      ok: false,
      reason: "machine check 1 of 1 (./smoke.sh) on machine old1 exited with code 3",
    });
    expect(bad.updated.map((u) => u.id)).toEqual(["old1", "old1"]);
    expect(bad.updated[1]?.body.config).toEqual(before);
  });

  it("updates machines on a volume in place with the rolling strategy too", async () => {
    const api = new FakeDeployApi(healthy);
    api.add("old1", "app", "started", "vol_1");
    api.add("old2", "app", "started", "vol_2");
    const { result } = await run(api, WITH_MOUNT, 2_000, "rolling");
    expect(result).toMatchObject({ ok: true, destroyed: [] });
    expect(api.updated.map((u) => u.id)).toEqual(["old1", "old2"]);
    expect(api.created).toEqual([]);
  });

  it("keeps every machine on a volume of a configured group, as flyctl's deploy does; replaces one without a volume and destroys a removed group's", async () => {
    const api = new FakeDeployApi(healthy);
    api.add("old1", "app", "started", "vol_1");
    api.add("old2", "app", "started", "vol_2");
    api.add("novol", "app");
    api.add("gone1", "worker", "started", "vol_w");
    const { result } = await run(api, WITH_MOUNT);
    expect(result).toMatchObject({ ok: true, volumesCreated: ["vol_new1"] });
    expect(api.updated.map((u) => u.id)).toEqual(["old1", "old2"]);
    // Three machines in the group before, three after: the one without a volume gets a new machine on one.
    expect(api.created).toHaveLength(1);
    expect(mountsOf(api.created[0])?.[0]?.volume).toBe("vol_new1");
    expect([...api.destroyed].sort()).toEqual(["gone1", "novol"]);
  });

  it("refuses a process group with two [mounts] before changing anything", async () => {
    const api = new FakeDeployApi(healthy);
    const two = config(`[[mounts]]
  source = "a"
  destination = "/a"
[[mounts]]
  source = "b"
  destination = "/b"
`);
    const { result } = await run(api, two);
    expect(result).toEqual({
      ok: false,
      reason:
        "process group app has 2 [mounts]; a machine mounts one volume (give each [mounts] its own processes)",
    });
    expect(api.created).toEqual([]);
    expect(api.createdVolumes).toEqual([]);
  });
});

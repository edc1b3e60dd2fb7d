import { parseAppConfig } from "@hangar/config";
import { describe, expect, it } from "vitest";
import { ApiError } from "./api.js";
import { type DeployApi, deployRelease, planReplacement } from "./deploy-machines.js";
import type { CheckStatus, CreateMachineRequest, Machine, UpdateReleaseRequest } from "./types.js";

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
  /** How many times each new machine had been read when the first machine was destroyed. */
  pollsAtFirstDestroy: Record<string, number> | undefined;
  private polls = new Map<string, number>();
  private next = 0;

  constructor(
    private readonly script: Script,
    private readonly failCreateAfter = Number.POSITIVE_INFINITY,
  ) {}

  add(id: string, group?: string, state = "started"): void {
    const metadata = group ? { fly_process_group: group } : undefined;
    this.machines.set(id, { id, state, config: { image: "old", ...(metadata ? { metadata } : {}) } });
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
    const machine = { id, state: "created", region: body.region ?? "local", config: body.config };
    this.machines.set(id, machine);
    return machine;
  }

  async getMachine(_app: string, id: string): Promise<Machine> {
    const machine = this.machines.get(id);
    if (!machine)
      throw new ApiError("machine not found", 404, "not_found", "GET", `/apps/${APP}/machines/${id}`);
    if (!id.startsWith("new")) return machine;
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

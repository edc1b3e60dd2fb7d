import type { CreateAppRequest, CreateMachineRequest, Signal, UpdateMachineRequest } from "@hangar/config";
import { createLogger } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { beforeEach, describe, expect, it } from "vitest";
import { testAuth } from "../../test/auth-fixture.js";
import { createApi } from "./api.js";
import type {
  AppListView,
  AppView,
  LeaseOptions,
  LeaseView,
  MachineEventView,
  MachineListFilter,
  MachineStartView,
  MachinesBackend,
  MachineVersionView,
  MachineView,
  RequestContext,
  RestartOptions,
  StopOptions,
  WaitOptions,
  WaitState,
} from "./backend.js";
import { ApiError } from "./errors.js";

/**
 * The HTTP layer's unit test double: apps, machines and leases in maps, and a log of every call with
 * its arguments, so tests can check what the HTTP layer handed over.
 */
class MemoryBackend implements MachinesBackend {
  readonly calls: { method: string; args: unknown[] }[] = [];
  readonly apps = new Map<string, AppView>();
  readonly machines = new Map<string, MachineView>();
  readonly leases = new Map<string, LeaseView>();

  /** Arguments of the last call of `method`. */
  last(method: keyof MachinesBackend): unknown[] | undefined {
    return this.calls.findLast((call) => call.method === method)?.args;
  }

  private record(method: keyof MachinesBackend, ...args: unknown[]): void {
    this.calls.push({ method, args });
  }

  private machine(app: string, id: string): MachineView {
    const machine = this.machines.get(`${app}/${id}`);
    if (!machine) throw ApiError.of("not_found", `machine ${id} not found`);
    return machine;
  }

  // Writes to a leased machine need the lease's nonce, as in Fly.
  private guard(app: string, id: string, ctx: RequestContext): MachineView {
    const machine = this.machine(app, id);
    const lease = this.leases.get(`${app}/${id}`);
    if (lease && lease.nonce !== ctx.leaseNonce) {
      throw ApiError.of("aborted", `machine ID ${id} lease currently held by ${lease.owner}`);
    }
    return machine;
  }

  async listApps(orgSlug: string, ctx: RequestContext): Promise<AppListView> {
    this.record("listApps", orgSlug, ctx);
    const apps = [...this.apps.values()].map((a) => ({
      id: a.id,
      name: a.name,
      machine_count: 0,
      network: "default",
    }));
    return { total_apps: apps.length, apps };
  }

  async createApp(input: CreateAppRequest, ctx: RequestContext): Promise<AppView> {
    this.record("createApp", input, ctx);
    if (this.apps.has(input.app_name)) throw ApiError.of("name_taken", "Name has already been taken");
    const app = {
      id: `app_${input.app_name}`,
      name: input.app_name,
      organization: { name: input.org_slug, slug: input.org_slug },
      status: "deployed",
    };
    this.apps.set(app.name, app);
    return app;
  }

  async getApp(app: string, ctx: RequestContext): Promise<AppView> {
    this.record("getApp", app, ctx);
    const found = this.apps.get(app);
    if (!found) throw ApiError.of("not_found", `app ${app} not found`);
    return found;
  }

  async deleteApp(app: string, ctx: RequestContext): Promise<void> {
    await this.getApp(app, ctx);
    this.apps.delete(app);
  }

  async listMachines(app: string, filter: MachineListFilter, ctx: RequestContext): Promise<MachineView[]> {
    this.record("listMachines", app, filter, ctx);
    return [...this.machines.values()];
  }

  async createMachine(app: string, input: CreateMachineRequest, ctx: RequestContext): Promise<MachineView> {
    this.record("createMachine", app, input, ctx);
    if (input.config.guest.memory_mb > 8192) {
      throw ApiError.of("insufficient_capacity", "no host in ams has 16384 MB free");
    }
    const machine = sampleMachine({ config: input.config, name: input.name ?? "generated-name" });
    this.machines.set(`${app}/${machine.id}`, machine);
    return machine;
  }

  async getMachine(app: string, id: string, ctx: RequestContext): Promise<MachineView> {
    this.record("getMachine", app, id, ctx);
    return this.machine(app, id);
  }

  async updateMachine(app: string, id: string, input: UpdateMachineRequest, ctx: RequestContext) {
    this.record("updateMachine", app, id, input, ctx);
    return { ...this.guard(app, id, ctx), config: input.config };
  }

  async destroyMachine(app: string, id: string, opts: { force: boolean }, ctx: RequestContext) {
    this.record("destroyMachine", app, id, opts, ctx);
    this.guard(app, id, ctx);
  }

  async startMachine(app: string, id: string, ctx: RequestContext): Promise<MachineStartView> {
    this.record("startMachine", app, id, ctx);
    this.guard(app, id, ctx);
    return { previous_state: "stopped" };
  }

  async stopMachine(app: string, id: string, opts: StopOptions, ctx: RequestContext) {
    this.record("stopMachine", app, id, opts, ctx);
    this.guard(app, id, ctx);
  }

  async restartMachine(app: string, id: string, opts: RestartOptions, ctx: RequestContext) {
    this.record("restartMachine", app, id, opts, ctx);
    this.guard(app, id, ctx);
  }

  async signalMachine(app: string, id: string, signal: Signal, ctx: RequestContext) {
    this.record("signalMachine", app, id, signal, ctx);
    this.guard(app, id, ctx);
  }

  async suspendMachine(app: string, id: string, ctx: RequestContext) {
    this.record("suspendMachine", app, id, ctx);
    this.guard(app, id, ctx);
  }

  async cordonMachine(app: string, id: string, ctx: RequestContext) {
    this.record("cordonMachine", app, id, ctx);
    this.guard(app, id, ctx);
  }

  async uncordonMachine(app: string, id: string, ctx: RequestContext) {
    this.record("uncordonMachine", app, id, ctx);
    this.guard(app, id, ctx);
  }

  async waitMachine(app: string, id: string, opts: WaitOptions, ctx: RequestContext): Promise<WaitState> {
    this.record("waitMachine", app, id, opts, ctx);
    const machine = this.machine(app, id);
    const reached = opts.states.find((s) => s === machine.state);
    if (!reached)
      throw ApiError.of("deadline_exceeded", `machine ${id} did not reach ${opts.states.join("|")} in time`);
    return reached;
  }

  async listMachineEvents(app: string, id: string, ctx: RequestContext): Promise<MachineEventView[]> {
    this.record("listMachineEvents", app, id, ctx);
    return this.machine(app, id).events;
  }

  async listMachineVersions(app: string, id: string, ctx: RequestContext): Promise<MachineVersionView[]> {
    this.record("listMachineVersions", app, id, ctx);
    const machine = this.machine(app, id);
    return [{ version: machine.instance_id, user_config: machine.config }];
  }

  async getMachineMetadata(app: string, id: string, ctx: RequestContext): Promise<Record<string, string>> {
    this.record("getMachineMetadata", app, id, ctx);
    return this.machine(app, id).config.metadata ?? {};
  }

  async setMachineMetadata(app: string, id: string, key: string, value: string, ctx: RequestContext) {
    this.record("setMachineMetadata", app, id, key, value, ctx);
    const machine = this.machine(app, id);
    machine.config = { ...machine.config, metadata: { ...machine.config.metadata, [key]: value } };
  }

  async deleteMachineMetadata(app: string, id: string, key: string, ctx: RequestContext) {
    this.record("deleteMachineMetadata", app, id, key, ctx);
    const machine = this.machine(app, id);
    const { [key]: _, ...rest } = machine.config.metadata ?? {};
    machine.config = { ...machine.config, metadata: rest };
  }

  async getLease(app: string, id: string, ctx: RequestContext): Promise<LeaseView> {
    this.record("getLease", app, id, ctx);
    const lease = this.leases.get(`${app}/${this.machine(app, id).id}`);
    if (!lease) throw ApiError.of("not_found", "lease not found");
    return lease;
  }

  async acquireLease(app: string, id: string, opts: LeaseOptions, ctx: RequestContext): Promise<LeaseView> {
    this.record("acquireLease", app, id, opts, ctx);
    this.guard(app, id, ctx);
    const lease = {
      nonce: "nonce-1",
      expires_at: 1_800_000_000 + (opts.ttlSeconds ?? 30),
      owner: "tester@hangar",
      description: opts.description ?? "",
      version: "01HVERSION",
    };
    this.leases.set(`${app}/${id}`, lease);
    return lease;
  }

  async releaseLease(app: string, id: string, ctx: RequestContext): Promise<void> {
    this.record("releaseLease", app, id, ctx);
    this.guard(app, id, ctx);
    this.leases.delete(`${app}/${id}`);
  }
}

function sampleMachine(over: Partial<MachineView> = {}): MachineView {
  return {
    id: "m1",
    name: "web-1",
    state: "started",
    region: "ams",
    instance_id: "01HINSTANCE",
    private_ip: "fdaa:0:1::2",
    config: { image: "nginx", guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 } },
    image_ref: { registry: "docker.io", repository: "library/nginx", tag: "latest", digest: "sha256:abc" },
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:01Z",
    events: [{ id: "ev1", type: "start", status: "started", source: "flyd", timestamp: 1_767_225_601_000 }],
    checks: [{ name: "alive", status: "passing", output: "ok", updated_at: "2026-01-01T00:00:01Z" }],
    host_status: "ok",
    ...over,
  };
}

// Property names of the spec's schemas (fly-machines-openapi.yaml, components.schemas).
const SPEC_FIELDS = {
  App: ["id", "name", "organization", "status"],
  Organization: ["name", "slug"],
  ListAppsResponse: ["apps", "total_apps"],
  ListApp: ["id", "machine_count", "name", "network"],
  Machine: [
    "checks",
    "config",
    "created_at",
    "events",
    "id",
    "image_ref",
    "instance_id",
    "name",
    "private_ip",
    "region",
    "state",
    "updated_at",
  ],
  ImageRef: ["digest", "registry", "repository", "tag"],
  MachineEvent: ["id", "request", "source", "status", "timestamp", "type"],
  CheckStatus: ["name", "output", "status", "updated_at"],
  Lease: ["description", "expires_at", "nonce", "owner", "version"],
  ErrorResponse: ["error", "status"],
};

const { auth: AUTH, token: TOKEN } = testAuth();
let backend: MemoryBackend;
let api: ReturnType<typeof createApi>;

beforeEach(() => {
  backend = new MemoryBackend();
  api = createApi({
    backend,
    auth: AUTH,
    logger: createLogger("test", { level: "silent" }),
    metrics: new Registry(),
  });
  backend.apps.set("web", {
    id: "app_web",
    name: "web",
    organization: { name: "personal", slug: "personal" },
    status: "deployed",
  });
  backend.machines.set("web/m1", sampleMachine());
});

interface CallOptions {
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
}

function call(method: string, path: string, opts: CallOptions = {}): Promise<Response> {
  const body = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  return Promise.resolve(
    api.request(path, {
      method,
      body,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...opts.headers },
    }),
  );
}

async function expectError(res: Response, status: number, code: string, message?: RegExp | string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(SPEC_FIELDS.ErrorResponse);
  expect(body.status).toBe(code);
  if (message !== undefined) expect(body.error).toMatch(message);
}

const ctxOf = (args: unknown[] | undefined) => args?.at(-1) as RequestContext;

describe("unauthenticated endpoints", () => {
  it("answers /health without a token", async () => {
    const res = await api.request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, status: "ok" });
  });

  it("answers /health with 503 while the gateway is not ready (NATS down, views replaying)", async () => {
    const notReady = createApi({
      backend: new MemoryBackend(),
      auth: AUTH,
      logger: createLogger("test", { level: "silent" }),
      health: () => ({ ok: false, nats: "disconnected" }),
    });
    const res = await notReady.request("/health");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ok: false, nats: "disconnected", status: "unavailable" });
  });

  it("serves Prometheus metrics without a token, including the API's own", async () => {
    await call("GET", "/v1/apps/web");
    const res = await api.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    expect(await res.text()).toContain(
      'hangar_gateway_http_request_duration_seconds_count{method="GET",route="/v1/apps/:app_name",status="200"} 1',
    );
  });
});

describe("auth", () => {
  it("refuses /v1 without a token, with a wrong one, and before any backend call", async () => {
    await expectError(await api.request("/v1/apps/web"), 401, "unauthenticated", /missing/);
    await expectError(
      await api.request("/v1/apps/web", { headers: { authorization: "Bearer nope" } }),
      401,
      "unauthenticated",
      /^malformed token/,
    );
    await expectError(await api.request("/v1/no/such/route"), 401, "unauthenticated");
    expect(backend.calls).toEqual([]);
  });
});

describe("errors", () => {
  it("answers unknown routes with a Fly-shaped 404", async () => {
    await expectError(
      await call("GET", "/v1/apps/web/volumes"),
      404,
      "not_found",
      "no route for GET /v1/apps/web/volumes",
    );
    await expectError(await call("PUT", "/v1/apps/web"), 404, "not_found");
  });

  it("maps a backend not_found to 404", async () => {
    await expectError(
      await call("GET", "/v1/apps/web/machines/nope"),
      404,
      "not_found",
      "machine nope not found",
    );
  });

  it("turns an unexpected backend failure into a generic 500", async () => {
    backend.getApp = async () => {
      throw new TypeError("cannot read properties of undefined (reading 'seq')");
    };
    const res = await call("GET", "/v1/apps/web");
    await expectError(res, 500, "unknown", "internal error");
  });

  it("rejects malformed JSON with 400 invalid_argument", async () => {
    const res = await call("POST", "/v1/apps/web/machines", { raw: '{"config": {"image": "nginx"' });
    await expectError(res, 400, "invalid_argument", /^invalid JSON body: /);
    expect(backend.last("createMachine")).toBeUndefined();
  });

  it("rejects a missing body where one is required", async () => {
    await expectError(
      await call("POST", "/v1/apps/web/machines"),
      400,
      "invalid_argument",
      "a JSON request body is required",
    );
  });

  it("rejects path parameters that are not valid names", async () => {
    await expectError(
      await call("GET", "/v1/apps/Web.App"),
      400,
      "invalid_argument",
      /^app_name: expected lowercase/,
    );
    await expectError(
      await call("GET", "/v1/apps/web/machines/m*1"),
      400,
      "invalid_argument",
      /^machine_id: /,
    );
  });

  it("passes the request id to the backend and echoes it", async () => {
    const res = await call("GET", "/v1/apps/web", { headers: { "fly-request-id": "req-42" } });
    expect(res.headers.get("fly-request-id")).toBe("req-42");
    expect(ctxOf(backend.last("getApp")).requestId).toBe("req-42");
  });
});

describe("apps", () => {
  it("lists apps of an org as ListAppsResponse", async () => {
    const res = await call("GET", "/v1/apps?org_slug=acme");
    expect(res.status).toBe(200);
    const body = (await res.json()) as AppListView;
    expect(Object.keys(body).sort()).toEqual(SPEC_FIELDS.ListAppsResponse);
    expect(Object.keys(body.apps[0] ?? {}).sort()).toEqual(SPEC_FIELDS.ListApp);
    expect(backend.last("listApps")?.[0]).toBe("acme");
  });

  it("creates an app with 201, defaulting the org, and refuses a taken name with 409 name_taken", async () => {
    const res = await call("POST", "/v1/apps", { body: { app_name: "api" } });
    expect(res.status).toBe(201);
    expect(backend.last("createApp")?.[0]).toEqual({ app_name: "api", org_slug: "personal" });
    await expectError(await call("POST", "/v1/apps", { body: { app_name: "web" } }), 409, "name_taken");
    await expectError(
      await call("POST", "/v1/apps", { body: { app_name: 7 } }),
      400,
      "invalid_argument",
      /^app_name: /,
    );
  });

  it("shows an app as App and deletes it with 202", async () => {
    const body = (await (await call("GET", "/v1/apps/web")).json()) as AppView;
    expect(Object.keys(body).sort()).toEqual(SPEC_FIELDS.App);
    expect(Object.keys(body.organization).sort()).toEqual(SPEC_FIELDS.Organization);
    const res = await call("DELETE", "/v1/apps/web");
    expect(res.status).toBe(202);
    expect(await res.text()).toBe("");
    await expectError(await call("GET", "/v1/apps/web"), 404, "not_found");
  });
});

describe("machines", () => {
  it("creates a machine from a validated config and answers with the Machine", async () => {
    const res = await call("POST", "/v1/apps/web/machines", {
      body: {
        name: "web-2",
        region: "ams",
        config: { image: "nginx", x_future_field: { a: 1 } },
        lease_ttl: 30,
      },
    });
    expect(res.status).toBe(200);
    const machine = (await res.json()) as MachineView;
    for (const field of SPEC_FIELDS.Machine) expect(machine).toHaveProperty(field);
    expect(Object.keys(machine.image_ref).sort()).toEqual(SPEC_FIELDS.ImageRef);
    expect(Object.keys(machine.checks[0] ?? {}).sort()).toEqual(SPEC_FIELDS.CheckStatus);
    const [app, input] = backend.last("createMachine") ?? [];
    expect(app).toBe("web");
    expect(input).toEqual({
      name: "web-2",
      region: "ams",
      lease_ttl: 30,
      config: {
        image: "nginx",
        x_future_field: { a: 1 },
        guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 },
      },
    });
  });

  it("names the offending field of a wrongly typed config", async () => {
    const res = await call("POST", "/v1/apps/web/machines", {
      body: { config: { image: "nginx", guest: { cpus: "2" } } },
    });
    await expectError(res, 400, "invalid_argument", 'config.guest.cpus: expected number, received "2"');
    const dir = await call("POST", "/v1/apps/web/machines", { body: { config: { image: "dir:./app" } } });
    await expectError(dir, 400, "invalid_argument", "config.image: expected an absolute path after dir:");
  });

  it("maps insufficient_capacity to 422", async () => {
    const res = await call("POST", "/v1/apps/web/machines", {
      body: { config: { image: "nginx", guest: { cpus: 8, memory_mb: 16384 } } },
    });
    await expectError(res, 422, "insufficient_capacity", "no host in ams has 16384 MB free");
  });

  it("passes list filters to the backend", async () => {
    const res = await call(
      "GET",
      "/v1/apps/web/machines?include_deleted=true&region=ams&state=started,stopped&state=suspended&summary=1",
    );
    expect(res.status).toBe(200);
    const [list] = (await res.json()) as MachineView[];
    expect(list?.id).toBe("m1");
    expect(backend.last("listMachines")?.slice(0, 2)).toEqual([
      "web",
      {
        includeDeleted: true,
        region: "ams",
        states: ["started", "stopped", "suspended"],
        summary: true,
        metadata: {},
      },
    ]);
    await call("GET", "/v1/apps/web/machines");
    expect(backend.last("listMachines")?.[1]).toEqual({
      includeDeleted: false,
      region: undefined,
      states: [],
      summary: false,
      metadata: {},
    });
    await call("GET", "/v1/apps/web/machines?metadata.fly_process_group=web&metadata.role=");
    expect((backend.last("listMachines")?.[1] as MachineListFilter | undefined)?.metadata).toEqual({
      fly_process_group: "web",
      role: "",
    });
  });

  it("rejects bad list filters", async () => {
    await expectError(
      await call("GET", "/v1/apps/web/machines?state=running"),
      400,
      "invalid_argument",
      /^state: /,
    );
    await expectError(
      await call("GET", "/v1/apps/web/machines?include_deleted=maybe"),
      400,
      "invalid_argument",
      'include_deleted: expected true or false, received "maybe"',
    );
    await expectError(
      await call("GET", "/v1/apps/web/machines?metadata.a%20b=x"),
      400,
      "invalid_argument",
      /^metadata\.a b: metadata key "a b" is invalid/,
    );
  });

  it("updates with the whole new config", async () => {
    const res = await call("POST", "/v1/apps/web/machines/m1", {
      body: { config: { image: "nginx:2" }, current_version: "01HINSTANCE" },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as MachineView).config.image).toBe("nginx:2");
    expect(backend.last("updateMachine")?.[2]).toMatchObject({ current_version: "01HINSTANCE" });
  });

  it("destroys with force from ?force or ?kill", async () => {
    for (const [query, force] of [
      ["", false],
      ["?force=true", true],
      ["?kill=true", true],
      ["?kill=false", false],
    ] as const) {
      const res = await call("DELETE", `/v1/apps/web/machines/m1${query}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ok: true });
      expect(backend.last("destroyMachine")?.[2]).toEqual({ force });
    }
  });
});

describe("machine actions", () => {
  it("starts and reports the previous state", async () => {
    const res = await call("POST", "/v1/apps/web/machines/m1/start");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ previous_state: "stopped" });
  });

  it("stops with an optional body: signal and a Go duration or seconds", async () => {
    await call("POST", "/v1/apps/web/machines/m1/stop", { body: { signal: "SIGTERM", timeout: "1m30s" } });
    expect(backend.last("stopMachine")?.[2]).toEqual({ signal: "SIGTERM", timeoutMs: 90_000 });
    await call("POST", "/v1/apps/web/machines/m1/stop", { body: { timeout: 5 } });
    expect(backend.last("stopMachine")?.[2]).toEqual({ signal: undefined, timeoutMs: 5000 });
    const res = await call("POST", "/v1/apps/web/machines/m1/stop");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(backend.last("stopMachine")?.[2]).toEqual({ signal: undefined, timeoutMs: undefined });
    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/stop", { body: { timeout: "soon" } }),
      400,
      "invalid_argument",
      /^timeout: expected a duration/,
    );
  });

  it("restarts with signal, timeout and force_stop from the query", async () => {
    await call("POST", "/v1/apps/web/machines/m1/restart?signal=SIGINT&timeout=10s&force_stop=true");
    expect(backend.last("restartMachine")?.[2]).toEqual({
      signal: "SIGINT",
      timeoutMs: 10_000,
      forceStop: true,
    });
    await call("POST", "/v1/apps/web/machines/m1/restart?timeout=3");
    expect(backend.last("restartMachine")?.[2]).toEqual({
      signal: undefined,
      timeoutMs: 3000,
      forceStop: false,
    });
    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/restart?timeout=-1s"),
      400,
      "invalid_argument",
      /^timeout: /,
    );
    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/restart?signal=SIGWINCH"),
      400,
      "invalid_argument",
      /^signal: /,
    );
  });

  it("signals with a valid signal, by name or number, and refuses others with 400", async () => {
    const res = await call("POST", "/v1/apps/web/machines/m1/signal", { body: { signal: "SIGHUP" } });
    expect(res.status).toBe(200);
    expect(backend.last("signalMachine")?.[2]).toBe("SIGHUP");
    await call("POST", "/v1/apps/web/machines/m1/signal", { body: { signal: 9 } });
    expect(backend.last("signalMachine")?.[2]).toBe("SIGKILL");
    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/signal", { body: { signal: "SIGFOO" } }),
      400,
      "invalid_argument",
      /^signal: expected one of SIGABRT, .*SIGUSR1, received "SIGFOO"$/,
    );
    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/signal", { body: {} }),
      400,
      "invalid_argument",
    );
  });

  it.each(["suspend", "cordon", "uncordon"] as const)("%s calls the backend", async (action) => {
    const res = await call("POST", `/v1/apps/web/machines/m1/${action}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(backend.last(`${action}Machine`)?.slice(0, 2)).toEqual(["web", "m1"]);
  });

  it("lists events as MachineEvent", async () => {
    const res = await call("GET", "/v1/apps/web/machines/m1/events");
    const events = (await res.json()) as MachineEventView[];
    expect(events).toHaveLength(1);
    for (const field of SPEC_FIELDS.MachineEvent.filter((f) => f !== "request")) {
      expect(events[0]).toHaveProperty(field);
    }
  });
});

describe("wait", () => {
  it("defaults to state started and 60 seconds", async () => {
    const res = await call("GET", "/v1/apps/web/machines/m1/wait");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, state: "started" });
    expect(backend.last("waitMachine")?.[2]).toEqual({
      states: ["started"],
      instanceId: undefined,
      fromEventId: undefined,
      timeoutMs: 60_000,
    });
  });

  it("reads state, instance_id or version, from_event_id and timeout", async () => {
    await call("GET", "/v1/apps/web/machines/m1/wait?state=stopped&instance_id=01HI&timeout=30");
    expect(backend.last("waitMachine")?.[2]).toEqual({
      states: ["stopped"],
      instanceId: "01HI",
      fromEventId: undefined,
      timeoutMs: 30_000,
    });
    await call(
      "GET",
      "/v1/apps/web/machines/m1/wait?state=suspended&state=started&version=01HV&from_event_id=ev9",
    );
    expect(backend.last("waitMachine")?.[2]).toEqual({
      states: ["suspended", "started"],
      instanceId: "01HV",
      fromEventId: "ev9",
      timeoutMs: 60_000,
    });
  });

  it.each(["timeout=61", "timeout=0", "timeout=1.5", "timeout=10s", "state=running"])(
    "rejects ?%s",
    async (q) => {
      const res = await call("GET", `/v1/apps/web/machines/m1/wait?${q}`);
      await expectError(res, 400, "invalid_argument", new RegExp(`^${q.split("=")[0]}: `));
      expect(backend.last("waitMachine")).toBeUndefined();
    },
  );

  it("answers a wait that times out with 408 deadline_exceeded", async () => {
    await expectError(
      await call("GET", "/v1/apps/web/machines/m1/wait?state=destroyed&timeout=1"),
      408,
      "deadline_exceeded",
    );
  });
});

describe("leases", () => {
  it("acquires a lease (ttl from body or query) and shows it in the spec's and fly-go's shapes", async () => {
    const res = await call("POST", "/v1/apps/web/machines/m1/lease", {
      body: { ttl: 60, description: "deploy" },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    for (const field of SPEC_FIELDS.Lease) expect(body).toHaveProperty(field);
    expect(body).toMatchObject({ nonce: "nonce-1", status: "success", data: { nonce: "nonce-1" } });
    expect(backend.last("acquireLease")?.[2]).toEqual({ ttlSeconds: 60, description: "deploy" });

    await call("POST", "/v1/apps/web/machines/m1/lease?ttl=15", {
      headers: { "fly-machine-lease-nonce": "nonce-1" },
    });
    expect(backend.last("acquireLease")?.[2]).toEqual({ ttlSeconds: 15, description: undefined });

    const shown = (await (await call("GET", "/v1/apps/web/machines/m1/lease")).json()) as LeaseView;
    expect(shown.nonce).toBe("nonce-1");
  });

  it("passes the lease nonce header to the backend on guarded writes and release", async () => {
    await call("POST", "/v1/apps/web/machines/m1/lease", { body: {} });
    const nonce = { "fly-machine-lease-nonce": "nonce-1" };

    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/stop"),
      409,
      "aborted",
      /lease currently held/,
    );
    expect(ctxOf(backend.last("stopMachine")).leaseNonce).toBeUndefined();

    const stopped = await call("POST", "/v1/apps/web/machines/m1/stop", { headers: nonce });
    expect(stopped.status).toBe(200);
    expect(ctxOf(backend.last("stopMachine")).leaseNonce).toBe("nonce-1");

    const updated = await call("POST", "/v1/apps/web/machines/m1", {
      body: { config: { image: "x" } },
      headers: nonce,
    });
    expect(updated.status).toBe(200);

    const released = await call("DELETE", "/v1/apps/web/machines/m1/lease", { headers: nonce });
    expect(released.status).toBe(200);
    expect(ctxOf(backend.last("releaseLease")).leaseNonce).toBe("nonce-1");
    await expectError(await call("GET", "/v1/apps/web/machines/m1/lease"), 404, "not_found");
  });

  it("rejects a bad ttl", async () => {
    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/lease?ttl=abc"),
      400,
      "invalid_argument",
      /^ttl: /,
    );
    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/lease", { body: { ttl: "60" } }),
      400,
      "invalid_argument",
      /^ttl: /,
    );
  });
});

describe("versions and metadata", () => {
  it("lists the machine's versions as MachineVersion", async () => {
    const res = await call("GET", "/v1/apps/web/machines/m1/versions");
    expect(res.status).toBe(200);
    const [version, ...rest] = (await res.json()) as MachineVersionView[];
    expect(rest).toEqual([]);
    expect(Object.keys(version ?? {}).sort()).toEqual(["user_config", "version"]);
    expect(version?.version).toBe("01HINSTANCE");
    expect(backend.last("listMachineVersions")?.slice(0, 2)).toEqual(["web", "m1"]);
  });

  it("sets a key from fly-go's {value} body and deletes it, each with an empty 204", async () => {
    const set = await call("POST", "/v1/apps/web/machines/m1/metadata/fly_bluegreen_deployment_tag", {
      body: { value: "safe-to-destroy" },
    });
    expect(set.status).toBe(204);
    expect(await set.text()).toBe("");
    expect(backend.last("setMachineMetadata")?.slice(0, 4)).toEqual([
      "web",
      "m1",
      "fly_bluegreen_deployment_tag",
      "safe-to-destroy",
    ]);
    const shown = await call("GET", "/v1/apps/web/machines/m1/metadata");
    expect(shown.status).toBe(200);
    expect(await shown.json()).toEqual({ fly_bluegreen_deployment_tag: "safe-to-destroy" });

    const deleted = await call("DELETE", "/v1/apps/web/machines/m1/metadata/fly_bluegreen_deployment_tag");
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe("");
    expect(backend.last("deleteMachineMetadata")?.slice(0, 3)).toEqual([
      "web",
      "m1",
      "fly_bluegreen_deployment_tag",
    ]);
    expect(await (await call("GET", "/v1/apps/web/machines/m1/metadata")).json()).toEqual({});
  });

  it("refuses a bad key, a missing or non-string value, and a value too long, with 400 before the backend", async () => {
    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/metadata/a%20b", { body: { value: "x" } }),
      400,
      "invalid_argument",
      /metadata key "a b" is invalid/,
    );
    await expectError(
      await call("DELETE", "/v1/apps/web/machines/m1/metadata/bad%2Fkey"),
      400,
      "invalid_argument",
      /metadata key "bad\/key" is invalid/,
    );
    await expectError(await call("POST", "/v1/apps/web/machines/m1/metadata/k"), 400, "invalid_argument");
    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/metadata/k", { body: { value: 3 } }),
      400,
      "invalid_argument",
      /^value: /,
    );
    await expectError(
      await call("POST", "/v1/apps/web/machines/m1/metadata/k", { body: { value: "v".repeat(1025) } }),
      400,
      "invalid_argument",
      /too long/,
    );
    expect(backend.last("setMachineMetadata")).toBeUndefined();
    expect(backend.last("deleteMachineMetadata")).toBeUndefined();
  });

  it("answers an unknown machine with 404", async () => {
    await expectError(await call("GET", "/v1/apps/web/machines/nope/versions"), 404, "not_found");
    await expectError(await call("GET", "/v1/apps/web/machines/nope/metadata"), 404, "not_found");
    await expectError(
      await call("POST", "/v1/apps/web/machines/nope/metadata/k", { body: { value: "v" } }),
      404,
      "not_found",
    );
  });
});

import type {
  CreateAppRequest,
  CreateMachineRequest,
  MachineConfig,
  Signal,
  UpdateMachineRequest,
} from "@hangar/config";
import {
  machineAggregateId,
  machineMetadataOf,
  newInstanceId,
  newMachineId,
  RESERVED_APP_NAMES,
} from "@hangar/domain";
import { isDomainError } from "@hangar/eventstore";
import {
  ApiError,
  type AppListView,
  type AppView,
  type LeaseOptions,
  type LeaseView,
  type MachineEventView,
  type MachineListFilter,
  type MachineStartView,
  type MachineSummaryView,
  type MachinesBackend,
  type MachineVersionView,
  type MachineView,
  type RequestContext,
  type RestartOptions,
  type StopOptions,
  type WaitOptions,
  type WaitState,
} from "../http/mod.js";
import type { Catalog, MachineRecord } from "./catalog.js";
import type { MachineCommands } from "./commands.js";

/**
 * The event store command id of a request with an Idempotency-Key (RequestContext.operationId): a
 * retry that took over a dead gateway's attempt sends the same command, which the store answers
 * with the first one's result instead of acting twice. Undefined: a fresh id.
 */
function commandIdOf(type: string, ctx: RequestContext): string | undefined {
  return ctx.operationId ? `${type}-${ctx.operationId}` : undefined;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function imageRef(image: string) {
  if (image.startsWith("dir:")) return { registry: "", repository: image, tag: "", digest: "" };
  const at = image.indexOf("@");
  const withoutDigest = at >= 0 ? image.slice(0, at) : image;
  const colon = withoutDigest.lastIndexOf(":");
  const slash = withoutDigest.indexOf("/");
  const hasTag = colon > withoutDigest.lastIndexOf("/");
  const name = hasTag ? withoutDigest.slice(0, colon) : withoutDigest;
  const registry = slash > 0 && /[.:]/.test(name.slice(0, slash)) ? name.slice(0, slash) : "";
  return {
    registry,
    repository: registry ? name.slice(slash + 1) : name,
    tag: hasTag ? withoutDigest.slice(colon + 1) : "latest",
    digest: at >= 0 ? image.slice(at + 1) : "",
  };
}

/** A machine as Fly's API lists it with `summary=true`: no config, checks, events or host status. */
export function toMachineSummaryView(r: MachineRecord): MachineSummaryView {
  const s = r.state;
  const config = JSON.parse(s.configJson || "{}") as MachineConfig;
  return {
    id: s.machineId,
    name: s.name,
    state: s.status,
    region: s.region,
    instance_id: s.instanceId,
    // Fly's private_ip is the 6PN address; a machine without one (dir:, host network) has its v4.
    private_ip: s.privateIpv6 || s.privateIp,
    image_ref: imageRef(config.image ?? ""),
    created_at: iso(r.createdAtMs),
    updated_at: iso(r.updatedAtMs),
    ...(s.cordoned ? { cordoned: true } : {}),
  };
}

/** A machine as Fly's API shows it. */
export function toMachineView(r: MachineRecord): MachineView {
  const s = r.state;
  const config = JSON.parse(s.configJson || "{}") as MachineConfig;
  return {
    ...toMachineSummaryView(r),
    config,
    events: r.events.slice(0, 10),
    checks: Object.entries(s.checks).map(([name, c]) => ({
      name,
      status: c.status as "passing" | "critical",
      output: c.output,
      updated_at: iso(r.checkUpdatedAtMs[name] ?? r.updatedAtMs),
    })),
    host_status: "ok",
  };
}

function hasMetadata(r: MachineRecord, wanted: [string, string][]): boolean {
  const metadata = machineMetadataOf(r.state.configJson);
  return wanted.every(([key, value]) => metadata[key] === value);
}

function appView(name: string, orgSlug: string): AppView {
  return { id: name, name, organization: { name: orgSlug, slug: orgSlug }, status: "deployed" };
}

/** The Machines API over the event streams: writes through MachineCommands, reads from the Catalog. */
export class StreamBackend implements MachinesBackend {
  constructor(
    private readonly catalog: Catalog,
    private readonly commands: MachineCommands,
  ) {}

  private record(app: string, machineId: string, destroyedToo = false): MachineRecord {
    const r = this.catalog.machine(machineAggregateId(app, machineId));
    if (!r || (r.state.status === "destroyed" && !destroyedToo)) {
      if (!this.catalog.app(app)) throw ApiError.of("not_found", `app ${app} not found`);
      throw ApiError.of("not_found", `machine ${machineId} not found in app ${app}`);
    }
    return r;
  }

  private appOrThrow(app: string) {
    const a = this.catalog.app(app);
    if (!a) throw ApiError.of("not_found", `app ${app} not found`);
    return a;
  }

  async listApps(orgSlug: string): Promise<AppListView> {
    const apps = this.catalog
      .appNames()
      .map((n) => this.catalog.app(n))
      .filter((a) => a !== undefined && (!orgSlug || a.orgSlug === orgSlug))
      .map((a) => ({
        id: a?.name ?? "",
        name: a?.name ?? "",
        machine_count: this.catalog.machinesOf(a?.name ?? "").filter((m) => m.state.status !== "destroyed")
          .length,
        network: a?.network ?? "default",
      }));
    return { total_apps: apps.length, apps };
  }

  async createApp(input: CreateAppRequest, ctx: RequestContext): Promise<AppView> {
    const taken = () => ApiError.of("name_taken", `app name ${input.app_name} is already taken`);
    // With a key, an app that exists may be this request's own, made by an attempt that died: the
    // store tells by the command id (a repeat succeeds, another's app is already_exists).
    if (RESERVED_APP_NAMES.has(input.app_name) || (this.catalog.app(input.app_name) && !ctx.operationId))
      throw taken();
    try {
      await this.commands.createApp(
        input.app_name,
        input.org_slug,
        input.network ?? undefined,
        commandIdOf("create-app", ctx),
      );
    } catch (err) {
      if (isDomainError(err, "already_exists")) throw taken();
      throw err;
    }
    return appView(input.app_name, input.org_slug);
  }

  async getApp(app: string): Promise<AppView> {
    const a = this.appOrThrow(app);
    return appView(a.name, a.orgSlug);
  }

  deleteApp(app: string): Promise<void> {
    return this.commands.destroyApp(app);
  }

  async listMachines(app: string, filter: MachineListFilter): Promise<(MachineView | MachineSummaryView)[]> {
    this.appOrThrow(app);
    const wanted = Object.entries(filter.metadata);
    return this.catalog
      .machinesOf(app)
      .filter(
        (m) =>
          (filter.includeDeleted || m.state.status !== "destroyed") &&
          (!filter.region || m.state.region === filter.region) &&
          (filter.states.length === 0 || filter.states.includes(m.state.status)) &&
          (wanted.length === 0 || hasMetadata(m, wanted)),
      )
      .map((m) => (filter.summary ? toMachineSummaryView(m) : toMachineView(m)));
  }

  async createMachine(app: string, input: CreateMachineRequest, ctx: RequestContext): Promise<MachineView> {
    this.appOrThrow(app);
    let r = await this.commands.createMachine(app, {
      ...(ctx.operationId ? { machineId: newMachineId(ctx.operationId) } : {}),
      ...(input.name ? { name: input.name } : {}),
      ...(input.region ? { region: input.region } : {}),
      config: input.config as CreateMachineRequest["config"] & Record<string, unknown>,
      skipLaunch: input.skip_launch ?? false,
    });
    let nonce: string | undefined;
    if (input.lease_ttl) {
      // A retry of a keyed create takes the same lease, with the same nonce, as the first attempt.
      nonce = ctx.operationId ? newMachineId(`${ctx.operationId}/lease`) : newInstanceId().toLowerCase();
      r = await this.commands.machine(
        app,
        r.state.machineId,
        { type: "AcquireLease", nonce, ttlS: input.lease_ttl, owner: "api", description: "" },
        commandIdOf("create-lease", ctx),
      );
    }
    return { ...toMachineView(r), ...(nonce ? { nonce } : {}) };
  }

  /**
   * A destroyed machine is still answered, with state "destroyed" and its events, as Fly's API does:
   * a client of an auto_destroy machine (flyctl's test and release_command machines) reads its exit
   * there. Every command on it answers 404.
   */
  async getMachine(app: string, machineId: string): Promise<MachineView> {
    return toMachineView(this.record(app, machineId, true));
  }

  async updateMachine(
    app: string,
    machineId: string,
    input: UpdateMachineRequest,
    ctx: RequestContext,
  ): Promise<MachineView> {
    const current = this.record(app, machineId);
    // A resumed keyed update may meet its own earlier attempt's version: the command id decides.
    if (input.current_version && !ctx.resumed && input.current_version !== current.state.instanceId) {
      throw ApiError.of(
        "failed_precondition",
        `machine ${machineId} is at version ${current.state.instanceId}, not ${input.current_version}`,
      );
    }
    const r = await this.commands.machine(
      app,
      machineId,
      {
        type: "UpdateMachine",
        instanceId: newInstanceId(),
        configJson: JSON.stringify(this.commands.keepVolume(app, current, input.config)),
        name: input.name ?? "",
        skipLaunch: input.skip_launch ?? false,
        ...(ctx.leaseNonce ? { leaseNonce: ctx.leaseNonce } : {}),
      },
      commandIdOf("UpdateMachine", ctx),
    );
    return toMachineView(r);
  }

  async destroyMachine(
    app: string,
    machineId: string,
    opts: { force: boolean },
    ctx: RequestContext,
  ): Promise<void> {
    // A resumed keyed destroy whose earlier attempt destroyed the machine: that was this request.
    const done = this.catalog.machine(machineAggregateId(app, machineId));
    if (ctx.resumed && done?.state.status === "destroyed") return;
    this.record(app, machineId);
    await this.commands.machine(
      app,
      machineId,
      {
        type: "DestroyMachine",
        force: opts.force,
        ...(ctx.leaseNonce ? { leaseNonce: ctx.leaseNonce } : {}),
      },
      commandIdOf("DestroyMachine", ctx),
    );
  }

  async startMachine(app: string, machineId: string, ctx: RequestContext): Promise<MachineStartView> {
    const previous = this.record(app, machineId).state.status;
    await this.commands.machine(
      app,
      machineId,
      {
        type: "StartMachine",
        ...(ctx.leaseNonce ? { leaseNonce: ctx.leaseNonce } : {}),
      },
      commandIdOf("StartMachine", ctx),
    );
    return { previous_state: previous };
  }

  async stopMachine(app: string, machineId: string, opts: StopOptions, ctx: RequestContext): Promise<void> {
    const config = JSON.parse(this.record(app, machineId).state.configJson || "{}") as MachineConfig;
    await this.commands.machine(
      app,
      machineId,
      {
        type: "StopMachine",
        signal: opts.signal ?? config.stop_config?.signal ?? "SIGINT",
        timeoutS: Math.ceil((opts.timeoutMs ?? 0) / 1000),
        ...(ctx.leaseNonce ? { leaseNonce: ctx.leaseNonce } : {}),
      },
      commandIdOf("StopMachine", ctx),
    );
  }

  async restartMachine(
    app: string,
    machineId: string,
    opts: RestartOptions,
    ctx: RequestContext,
  ): Promise<void> {
    const config = JSON.parse(this.record(app, machineId).state.configJson || "{}") as MachineConfig;
    await this.commands.machine(
      app,
      machineId,
      {
        type: "RestartMachine",
        signal: opts.forceStop ? "SIGKILL" : (opts.signal ?? config.stop_config?.signal ?? "SIGINT"),
        timeoutS: Math.ceil((opts.timeoutMs ?? 0) / 1000),
        ...(ctx.leaseNonce ? { leaseNonce: ctx.leaseNonce } : {}),
      },
      commandIdOf("RestartMachine", ctx),
    );
  }

  signalMachine(app: string, machineId: string, signal: Signal): Promise<void> {
    return this.commands.signal(app, machineId, signal);
  }

  async suspendMachine(app: string, machineId: string, ctx: RequestContext): Promise<void> {
    this.record(app, machineId);
    await this.commands.machine(
      app,
      machineId,
      {
        type: "SuspendMachine",
        ...(ctx.leaseNonce ? { leaseNonce: ctx.leaseNonce } : {}),
      },
      commandIdOf("SuspendMachine", ctx),
    );
  }

  async cordonMachine(app: string, machineId: string, ctx: RequestContext): Promise<void> {
    this.record(app, machineId);
    await this.commands.machine(app, machineId, {
      type: "CordonMachine",
      ...(ctx.leaseNonce ? { leaseNonce: ctx.leaseNonce } : {}),
    });
  }

  async uncordonMachine(app: string, machineId: string, ctx: RequestContext): Promise<void> {
    this.record(app, machineId);
    await this.commands.machine(app, machineId, {
      type: "UncordonMachine",
      ...(ctx.leaseNonce ? { leaseNonce: ctx.leaseNonce } : {}),
    });
  }

  async waitMachine(app: string, machineId: string, opts: WaitOptions): Promise<WaitState> {
    const id = machineAggregateId(app, machineId);
    if (!this.catalog.machine(id)) this.record(app, machineId);
    let failed: string | undefined;
    const reached = await this.catalog.waitFor(
      id,
      (m) => {
        if (opts.instanceId && m.state.instanceId !== opts.instanceId) return false;
        if (opts.fromEventId) {
          const i = m.events.findIndex((e) => e.id === opts.fromEventId);
          if (i === 0) return false;
        }
        // Waiting for a start that failed would only time out: say why at once.
        if (m.state.status === "failed" && opts.states.includes("started")) {
          failed = m.state.failure;
          return true;
        }
        return (opts.states as string[]).includes(m.state.status);
      },
      opts.timeoutMs,
    );
    if (failed !== undefined)
      throw ApiError.of("failed_precondition", `machine ${machineId} failed to start: ${failed}`);
    if (!reached) {
      const now = this.catalog.machine(id)?.state.status ?? "unknown";
      throw ApiError.of(
        "deadline_exceeded",
        `machine ${machineId} did not reach ${opts.states.join(" or ")} within ${Math.round(opts.timeoutMs / 1000)} s (it is ${now})`,
      );
    }
    return reached.state.status as WaitState;
  }

  async listMachineEvents(app: string, machineId: string): Promise<MachineEventView[]> {
    return this.record(app, machineId, true).events;
  }

  async listMachineVersions(app: string, machineId: string): Promise<MachineVersionView[]> {
    return this.record(app, machineId).versions.map((v) => ({
      version: v.version,
      user_config: JSON.parse(v.configJson || "{}") as MachineConfig,
    }));
  }

  async getMachineMetadata(app: string, machineId: string): Promise<Record<string, string>> {
    return machineMetadataOf(this.record(app, machineId).state.configJson);
  }

  async setMachineMetadata(
    app: string,
    machineId: string,
    key: string,
    value: string,
    ctx: RequestContext,
  ): Promise<void> {
    this.record(app, machineId);
    await this.commands.machine(
      app,
      machineId,
      { type: "SetMachineMetadata", key, value },
      commandIdOf("SetMachineMetadata", ctx),
    );
  }

  async deleteMachineMetadata(
    app: string,
    machineId: string,
    key: string,
    ctx: RequestContext,
  ): Promise<void> {
    this.record(app, machineId);
    await this.commands.machine(
      app,
      machineId,
      { type: "DeleteMachineMetadata", key },
      commandIdOf("DeleteMachineMetadata", ctx),
    );
  }

  async getLease(app: string, machineId: string): Promise<LeaseView> {
    const r = this.record(app, machineId);
    const lease = r.state.lease;
    if (!lease || lease.expiresAtMs <= Date.now())
      throw ApiError.of("not_found", `machine ${machineId} has no lease`);
    return {
      nonce: lease.nonce,
      expires_at: Math.floor(lease.expiresAtMs / 1000),
      owner: lease.owner,
      description: lease.description,
      version: r.state.instanceId,
    };
  }

  async acquireLease(
    app: string,
    machineId: string,
    opts: LeaseOptions,
    ctx: RequestContext,
  ): Promise<LeaseView> {
    const current = this.record(app, machineId).state.lease;
    const ttlS = opts.ttlSeconds ?? 30;
    // Holding the current nonce refreshes the lease: release it and take it again in its name.
    if (current && ctx.leaseNonce === current.nonce && current.expiresAtMs > Date.now()) {
      await this.commands.machine(app, machineId, { type: "ReleaseLease", nonce: current.nonce });
    }
    const nonce =
      ctx.leaseNonce && current?.nonce === ctx.leaseNonce ? ctx.leaseNonce : newInstanceId().toLowerCase();
    await this.commands.machine(app, machineId, {
      type: "AcquireLease",
      nonce,
      ttlS,
      owner: "api",
      description: opts.description ?? "",
    });
    return this.getLease(app, machineId);
  }

  async releaseLease(app: string, machineId: string, ctx: RequestContext): Promise<void> {
    this.record(app, machineId);
    await this.commands.machine(app, machineId, { type: "ReleaseLease", nonce: ctx.leaseNonce ?? "" });
  }
}

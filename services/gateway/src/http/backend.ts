import type {
  CreateAppRequest,
  CreateMachineRequest,
  MachineConfig,
  Signal,
  StopSignal,
  UpdateMachineRequest,
} from "@hangar/config";

/** Fly's machine states. */
export const MACHINE_STATES = [
  "created",
  "starting",
  "started",
  "stopping",
  "stopped",
  "suspending",
  "suspended",
  "replacing",
  "destroying",
  "destroyed",
  "failed",
] as const;
export type MachineState = (typeof MACHINE_STATES)[number];

/** States `wait` can wait for: the spec's started, stopped, destroyed, and suspended. */
export const WAIT_STATES = ["started", "stopped", "suspended", "destroyed"] as const;
export type WaitState = (typeof WAIT_STATES)[number];

/** What the backend knows of the HTTP request behind a call. */
export interface RequestContext {
  /** The request's `fly-request-id` (echoed or generated): a correlation id, not an idempotency key. */
  requestId: string;
  /** The `fly-machine-lease-nonce` header, if sent; the backend checks it against a machine's lease. */
  leaseNonce: string | undefined;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** Who calls: the token's kind and id (unset in tests that build a context by hand). */
  principal?: { kind: string; tokenId: string };
  /**
   * Set for a request with an Idempotency-Key (http/idempotency.ts): what the backend makes (a
   * machine id, a command id) derives from it, so a retry that took over a dead gateway's attempt
   * meets what that attempt made instead of making it twice.
   */
  operationId?: string;
  /**
   * With operationId: an earlier attempt with the key may have acted (its gateway died, or it ended
   * in a 5xx). Checks that attempt may have made false (current_version, a machine it destroyed) are
   * left to the event store's command ids.
   */
  resumed?: boolean;
}

/** Fly's `App`. */
export interface AppView {
  id: string;
  name: string;
  organization: { name: string; slug: string };
  status: string;
}

/** Fly's `ListAppsResponse`. */
export interface AppListView {
  total_apps: number;
  apps: { id: string; name: string; machine_count: number; network: unknown }[];
}

/** Fly's `ImageRef`. */
export interface ImageRefView {
  registry: string;
  repository: string;
  tag: string;
  digest: string;
  labels?: Record<string, string>;
}

/** Fly's `MachineEvent`; timestamp in unix milliseconds. */
export interface MachineEventView {
  id: string;
  type: string;
  status: string;
  source: string;
  timestamp: number;
  request?: Record<string, unknown>;
}

/** Fly's `CheckStatus`. */
export interface CheckStatusView {
  name: string;
  status: "passing" | "warning" | "critical";
  output: string;
  updated_at: string;
}

/** Fly's `Machine`; times are RFC 3339. */
export interface MachineView {
  id: string;
  name: string;
  state: MachineState;
  region: string;
  instance_id: string;
  private_ip: string;
  config: MachineConfig;
  /** Set when host_status is not "ok" and the config had to be pieced together. */
  incomplete_config?: MachineConfig;
  image_ref: ImageRefView;
  created_at: string;
  updated_at: string;
  events: MachineEventView[];
  checks: CheckStatusView[];
  host_status: "ok" | "unknown" | "unreachable";
  /** Only on the answer to a create with `lease_ttl`: the nonce of the lease taken. */
  nonce?: string;
  cordoned?: boolean;
}

/**
 * A machine in a list asked for with `summary=true`: Fly leaves out config, checks, events,
 * host_status and nonce.
 */
export type MachineSummaryView = Omit<
  MachineView,
  "config" | "incomplete_config" | "checks" | "events" | "host_status" | "nonce"
>;

/** Fly's `Lease`; expires_at in unix seconds. */
export interface LeaseView {
  nonce: string;
  expires_at: number;
  owner: string;
  description: string;
  version: string;
}

/** Fly's `MachineVersion`: one config the machine has had, under its version (instance id). */
export interface MachineVersionView {
  version: string;
  user_config: MachineConfig;
}

/** Answer to a start (fly-go reads previous_state). */
export interface MachineStartView {
  previous_state: MachineState;
}

export interface MachineListFilter {
  includeDeleted: boolean;
  region: string | undefined;
  /** Empty means any state. */
  states: MachineState[];
  /** Fly's summary view (MachineSummaryView): no config, checks, events, host_status. */
  summary: boolean;
  /** Fly's `metadata.<key>=<value>` filters: every pair must be in the machine's config.metadata. */
  metadata: Record<string, string>;
}

export interface StopOptions {
  signal: StopSignal | undefined;
  timeoutMs: number | undefined;
}

export interface RestartOptions extends StopOptions {
  forceStop: boolean;
}

export interface WaitOptions {
  /** Any of these ends the wait. */
  states: WaitState[];
  /** Wait for this instance (Fly's `instance_id`, or `version` as newer clients send it). */
  instanceId: string | undefined;
  /** Only events after this one count. */
  fromEventId: string | undefined;
  timeoutMs: number;
}

export interface LeaseOptions {
  ttlSeconds: number | undefined;
  description: string | undefined;
}

/**
 * What the Machines API needs from the platform. Inputs are already validated; results are the JSON
 * views sent as they are. Failures are `ApiError`s, or DomainErrors and CommandErrors, which the
 * error handler maps by their code (errors.ts); anything else becomes a 500.
 */
export interface MachinesBackend {
  listApps(orgSlug: string, ctx: RequestContext): Promise<AppListView>;
  createApp(input: CreateAppRequest, ctx: RequestContext): Promise<AppView>;
  getApp(app: string, ctx: RequestContext): Promise<AppView>;
  deleteApp(app: string, ctx: RequestContext): Promise<void>;

  listMachines(
    app: string,
    filter: MachineListFilter,
    ctx: RequestContext,
  ): Promise<(MachineView | MachineSummaryView)[]>;
  /** With `lease_ttl`, the machine is created leased and the view carries `nonce`. */
  createMachine(app: string, input: CreateMachineRequest, ctx: RequestContext): Promise<MachineView>;
  getMachine(app: string, machineId: string, ctx: RequestContext): Promise<MachineView>;
  updateMachine(
    app: string,
    machineId: string,
    input: UpdateMachineRequest,
    ctx: RequestContext,
  ): Promise<MachineView>;
  /** `force` destroys a running machine (Fly's `force`/`kill`); without it a running machine is refused. */
  destroyMachine(
    app: string,
    machineId: string,
    opts: { force: boolean },
    ctx: RequestContext,
  ): Promise<void>;

  startMachine(app: string, machineId: string, ctx: RequestContext): Promise<MachineStartView>;
  stopMachine(app: string, machineId: string, opts: StopOptions, ctx: RequestContext): Promise<void>;
  restartMachine(app: string, machineId: string, opts: RestartOptions, ctx: RequestContext): Promise<void>;
  signalMachine(app: string, machineId: string, signal: Signal, ctx: RequestContext): Promise<void>;
  suspendMachine(app: string, machineId: string, ctx: RequestContext): Promise<void>;
  cordonMachine(app: string, machineId: string, ctx: RequestContext): Promise<void>;
  uncordonMachine(app: string, machineId: string, ctx: RequestContext): Promise<void>;
  /** Resolves with the state reached; throws `deadline_exceeded` after `timeoutMs`. */
  waitMachine(app: string, machineId: string, opts: WaitOptions, ctx: RequestContext): Promise<WaitState>;
  /** Newest first, as Fly lists them. */
  listMachineEvents(app: string, machineId: string, ctx: RequestContext): Promise<MachineEventView[]>;
  /** The configs the machine has had, newest (the current one) first. */
  listMachineVersions(app: string, machineId: string, ctx: RequestContext): Promise<MachineVersionView[]>;

  /** The machine's config.metadata. */
  getMachineMetadata(app: string, machineId: string, ctx: RequestContext): Promise<Record<string, string>>;
  /** Sets one key of config.metadata in place (no new version, no restart); `key` and `value` are checked. */
  setMachineMetadata(
    app: string,
    machineId: string,
    key: string,
    value: string,
    ctx: RequestContext,
  ): Promise<void>;
  /** Removes one key of config.metadata in place; a key that is not there is no error. */
  deleteMachineMetadata(app: string, machineId: string, key: string, ctx: RequestContext): Promise<void>;

  /** Throws `not_found` when the machine has no lease. */
  getLease(app: string, machineId: string, ctx: RequestContext): Promise<LeaseView>;
  /** Takes the lease, or refreshes it when `ctx.leaseNonce` is the current one; `aborted` if another holds it. */
  acquireLease(app: string, machineId: string, opts: LeaseOptions, ctx: RequestContext): Promise<LeaseView>;
  /** Releases the lease whose nonce is `ctx.leaseNonce`. */
  releaseLease(app: string, machineId: string, ctx: RequestContext): Promise<void>;
}

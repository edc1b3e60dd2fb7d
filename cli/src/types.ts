// The subset of the Fly Machines API schemas (shared/reference/fly-machines-openapi.yaml) that the CLI
// reads or writes. Fields stay optional where the spec leaves them optional.

export interface Organization {
  name?: string;
  slug?: string;
}

export interface App {
  id?: string;
  name?: string;
  organization?: Organization;
  status?: string;
}

export interface ListApp {
  id?: string;
  name?: string;
  machine_count?: number;
  network?: unknown;
}

export interface ListAppsResponse {
  apps?: ListApp[];
  total_apps?: number;
}

export interface MachinePort {
  port?: number;
  start_port?: number;
  end_port?: number;
  handlers?: string[];
  force_https?: boolean;
}

export interface MachineService {
  protocol?: string;
  internal_port?: number;
  ports?: MachinePort[];
  autostart?: boolean;
  autostop?: boolean;
}

export interface MachineGuest {
  cpu_kind?: string;
  cpus?: number;
  memory_mb?: number;
}

export interface MachineInit {
  cmd?: string[];
  entrypoint?: string[];
  exec?: string[];
}

export type RestartPolicy = "no" | "always" | "on-failure";

/** A volume mounted into a machine (Fly's MachineMount): by volume id, or by name for a deploy to pick one. */
export interface MachineMount {
  volume?: string | null;
  name?: string | null;
  path: string;
  size_gb?: number | null;
}

export interface MachineConfig {
  image?: string;
  env?: Record<string, string>;
  guest?: MachineGuest;
  init?: MachineInit;
  restart?: { policy?: RestartPolicy; max_retries?: number };
  services?: MachineService[];
  metadata?: Record<string, string>;
  auto_destroy?: boolean;
  mounts?: MachineMount[] | null;
  /** Machines this one is a standby for (Fly's standbys). */
  standbys?: string[] | null;
}

/** Fly's MachineExecRequest: an argv and a timeout in seconds. */
export interface ExecRequest {
  command: string[];
  timeout: number;
}

/** Fly's answer to an exec: what the command printed and how it ended. */
export interface ExecResponse {
  stdout: string;
  stderr: string;
  exit_code: number;
  /** The signal that killed it, 0 when none did. */
  exit_signal: number;
}

export interface MachineEvent {
  id?: string;
  type?: string;
  status?: string;
  source?: string;
  /** Milliseconds since the epoch. */
  timestamp?: number;
  request?: unknown;
}

/** A check's last result, as GET machine shows it. */
export interface CheckStatus {
  name: string;
  status: "passing" | "warning" | "critical" | string;
  output?: string;
  updated_at?: string;
}

export interface Machine {
  id: string;
  name?: string;
  state?: string;
  region?: string;
  instance_id?: string;
  private_ip?: string;
  config?: MachineConfig;
  image_ref?: { registry?: string; repository?: string; tag?: string; digest?: string };
  events?: MachineEvent[];
  checks?: CheckStatus[];
  created_at?: string;
  updated_at?: string;
}

export interface CreateMachineRequest {
  name?: string;
  region?: string;
  config: MachineConfig;
}

export interface StopRequest {
  signal?: string;
  /** A Go duration string, e.g. "30s". */
  timeout?: string;
}

/** The states the wait endpoint accepts. */
export type WaitState = "started" | "stopped" | "destroyed";

// Builds and releases: Hangar's own endpoints (Fly has no build API), as the gateway serves them.

export type BuildStatus = "requested" | "running" | "succeeded" | "failed";

/** One Dockerfile instruction the builder ran or found in its cache. */
export interface BuildStep {
  /** 1-based, of `steps`. */
  step: number;
  steps: number;
  stage?: string;
  /** Line of the instruction in the Dockerfile. */
  line?: number;
  instruction: string;
  cached: boolean;
  duration_ms?: number;
  /** What a RUN printed. */
  output?: string | string[];
}

/** Why a build failed: the instruction, its Dockerfile line and what it printed. */
export interface BuildFailure {
  message: string;
  line?: number;
  instruction?: string;
  output?: string | string[];
}

export interface Build {
  id: string;
  app: string;
  status: BuildStatus;
  steps?: BuildStep[];
  image_ref?: string;
  manifest_digest?: string;
  error?: BuildFailure;
  /** RFC 3339: when the build was requested. */
  created_at?: string;
  duration_ms?: number | null;
}

/** One line of GET /apps/{app}/builds/{id}/events. */
export type BuildEvent =
  | { type: "requested" }
  | { type: "started" }
  | ({ type: "step" } & BuildStep)
  | {
      type: "succeeded";
      image_ref: string;
      manifest_digest?: string;
      cached_steps?: number;
      total_steps?: number;
      duration_ms?: number;
    }
  | ({ type: "failed" } & BuildFailure);

export type ReleaseStatus = "pending" | "running" | "rolling_back" | "succeeded" | "failed";

export interface Release {
  version: number;
  id?: string;
  status: ReleaseStatus;
  image?: string;
  build_id?: string | null;
  description?: string | null;
  reason?: string | null;
  strategy?: string | null;
  /** The app config the release runs with, as sent. */
  config?: Record<string, unknown> | null;
  created_at?: string;
  machine_ids?: string[];
  /** Carried out by the platform's release orchestrator. */
  deploy?: boolean;
  max_unavailable?: string | null;
  wait_timeout?: number | null;
  deployed_by?: string;
  rollback_of?: number | null;
  rolled_back_to?: number | null;
  previous_version?: number | null;
  /** Its [deploy] release_command's run, once started. */
  release_command?: CommandRunView | null;
  /** A first deploy by `hangar launch`: its [deploy] seed_command's run, once started. */
  seed_command?: CommandRunView | null;
  /** An edge app's release: the bundle the proxies run, and its limits. */
  edge?: { bundle: string; cpu_ms: number; memory_mb: number } | null;
}

/** A release's release_command or seed_command run: its machine, and how it ended (both null while it runs). */
export interface CommandRunView {
  machine_id: string;
  exit_code: number | null;
  error: string | null;
}

/** What `POST /apps/{app}/edge/bundles` answers: the bundle's digest and size. */
export interface StoredEdgeBundle {
  digest: string;
  size: number;
}

/** One app secret as the API lists it: never its value. */
export interface SecretInfo {
  name: string;
  digest: string | null;
  status: "deployed" | "staged" | "unset_staged";
  created_at: string;
  updated_at: string;
}

/** GET/POST /apps/{app}/secrets. */
export interface SecretsListing {
  secrets: SecretInfo[];
  version: number;
}

/** Body of POST /apps/{app}/releases. */
export interface CreateReleaseRequest {
  /** Required unless build_id, edge_bundle or rollback_of is given. */
  image?: string;
  /** An edge app's bundle (uploaded first) instead of an image. */
  edge_bundle?: string;
  build_id?: string;
  /** The parsed app config (rollback_of: that release's, unless given). */
  config?: unknown;
  strategy?: string;
  description?: string;
  /** The platform carries the release out (its release orchestrator), not this client. */
  deploy?: boolean;
  max_unavailable?: string;
  /** Seconds. */
  wait_timeout?: number;
  rollback_of?: number;
  /** A first deploy by `hangar launch`: runs [deploy] seed_command (with deploy only). */
  seed?: boolean;
}

/** Body of PATCH /apps/{app}/releases/{version}. */
export type UpdateReleaseRequest =
  | { status: "succeeded"; machine_ids: string[] }
  | { status: "failed"; reason: string };

/** One action of an autoscaler decision. */
export interface ScaleAction {
  kind: string;
  machine_id: string;
  region: string;
  /** pending, done, kept or failed. */
  outcome: string;
  message: string;
}

/** One autoscaler decision: why (reason and inputs) and what (actions). */
export interface ScaleDecision {
  id: string;
  decided_at: string;
  current: number;
  desired: number;
  reason: string;
  inputs: Record<string, number | string | boolean>;
  actions: ScaleAction[];
}

/** GET /apps/{app}/scaling. */
export interface Scaling {
  app: string;
  panic: boolean;
  panic_since: string | null;
  decisions_total: number;
  decisions: ScaleDecision[];
}

/** Fly's `Volume`. */
export interface Volume {
  id: string;
  name: string;
  state: string;
  size_gb: number;
  region: string;
  zone: string;
  encrypted: boolean;
  fstype: string;
  created_at: string;
  snapshot_retention: number;
  auto_backup_enabled?: boolean;
  attached_machine_id: string | null;
  attached_alloc_id: string | null;
  block_size: number;
  blocks: number;
  blocks_free: number;
  blocks_avail: number;
}

/** Fly's `CreateVolumeRequest`: `snapshot_id` restores a snapshot, `source_volume_id` forks a volume. */
export interface CreateVolumeRequest {
  name: string;
  region?: string;
  size_gb?: number;
  snapshot_id?: string;
  source_volume_id?: string;
  snapshot_retention?: number;
  require_unique_zone?: boolean;
}

/** Fly's `VolumeSnapshot`, with its retention and kind. */
export interface VolumeSnapshot {
  id: string;
  size: number;
  digest: string;
  created_at: string;
  status: string;
  retention_days?: number;
  type?: string;
}

/** Fly's `ExtendVolumeResponse`. */
export interface ExtendVolumeResponse {
  needs_restart: boolean;
  volume: Volume;
}

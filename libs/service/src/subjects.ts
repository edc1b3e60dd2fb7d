import type { Volume } from "@hangar/domain";

/**
 * The NATS subjects services talk on, besides the event streams (ev.app.*, ev.machine.*, ev.host.*).
 * Commands are request/reply in queue groups; heartbeats and logs are core NATS (no history needed).
 */
export const subjects = {
  /** Placement: reserve room for a machine. Request PlaceRequest, reply PlaceResult. */
  place: "cmd.placement.place",
  /** Placement: reserve disk room for a volume (or grow it). Request PlaceVolumeRequest, reply PlaceResult. */
  placeVolume: "cmd.placement.place_volume",
  /**
   * The volume service's commands (docs/volumes.md), each answered with the volume (VolumeReply) or
   * its snapshot: create (VolumeCreateRequest), update (VolumeUpdateRequest), extend
   * (VolumeExtendRequest), destroy (VolumeRef), snapshot (VolumeSnapshotRequest), attach and detach
   * (VolumeAttachRequest).
   */
  volume: {
    create: "cmd.volume.create",
    update: "cmd.volume.update",
    extend: "cmd.volume.extend",
    destroy: "cmd.volume.destroy",
    snapshot: "cmd.volume.snapshot",
    attach: "cmd.volume.attach",
    detach: "cmd.volume.detach",
  },
  /**
   * A host agent's auto-extend of a volume mounted on its own host (VolumeExtendRequest), one subject
   * per host: `cmd.volume.auto_extend.<host_id>`. Host agents may publish only their own; the volume
   * service refuses a volume not on that host or not attached to a machine (docs/volumes.md).
   */
  volumeAutoExtend: (hostId: string) => `cmd.volume.auto_extend.${hostId}`,
  volumeAutoExtendAll: "cmd.volume.auto_extend.*",
  /**
   * The postgres manager's commands (docs/postgres.md), queue group `postgres-manager`; only the
   * gateway asks them, after authorizing the caller against the cluster's org. create
   * (PgCreateRequest -> PgClusterView, once every member is ready), list (PgListRequest ->
   * PgClusterList), status (PgClusterRef -> PgClusterView with live member figures), attach
   * (PgAttachRequest -> PgAttachReply), detach (PgDetachRequest), failover (PgClusterRef ->
   * PgFailoverReply: a planned switchover), destroy (PgClusterRef) and import (PgImportRequest ->
   * PgImportReply: pg_dump | pg_restore from a source URL in a temporary machine of the cluster).
   */
  postgres: {
    create: "cmd.postgres.create",
    list: "cmd.postgres.list",
    status: "cmd.postgres.status",
    attach: "cmd.postgres.attach",
    detach: "cmd.postgres.detach",
    failover: "cmd.postgres.failover",
    destroy: "cmd.postgres.destroy",
    import: "cmd.postgres.import",
    /** Base backups (docs/postgres.md "Backups"): PgClusterRef -> PgBackupView once stored. */
    backupCreate: "cmd.postgres.backup_create",
    /** PgClusterRef -> PgBackupList, newest first. */
    backupList: "cmd.postgres.backup_list",
    /** PgRestoreRequest -> PgClusterView: a new cluster from a cluster's archive, once ready. */
    backupRestore: "cmd.postgres.backup_restore",
  },
  /**
   * The webhooks service's commands (docs/webhooks.md, webhook-messages.ts), queue group `webhooks`;
   * only the gateway asks them, after authorizing the caller against the org (and app): create
   * (WebhookCreateRequest -> WebhookCreatedReply, the secret's only showing), list (WebhookListRequest
   * -> WebhookList), get (WebhookRef -> WebhookView), delete (WebhookRef), deliveries (WebhookRef ->
   * WebhookDeliveryList), redeliver (WebhookRedeliverRequest -> WebhookDeliveryView).
   */
  webhooks: {
    create: "cmd.webhooks.create",
    list: "cmd.webhooks.list",
    get: "cmd.webhooks.get",
    delete: "cmd.webhooks.delete",
    deliveries: "cmd.webhooks.deliveries",
    redeliver: "cmd.webhooks.redeliver",
  },
  /** The gateway (owner of the machine commands): start a sleeping machine for a proxy. Request WakeRequest. */
  wake: "cmd.machines.wake",
  /**
   * A host agent's direct commands, one subject per host: `signal` (SignalRequest), `logs` (HostLogsRequest),
   * `exec` (HostExecRequest), `ps` (HostPsRequest), `tunnel` (HostTunnelRequest); the volume
   * service's `volume.create` (HostVolumeCreateRequest), `volume.extend`, `volume.snapshot`,
   * `volume.delete` and `volume.stat`.
   */
  hostCommand: (hostId: string, verb: string) => `cmd.host.${hostId}.${verb}`,
  /** Host heartbeats: `hosts.heartbeat.<host_id>`, a HostHeartbeat every second. */
  heartbeat: (hostId: string) => `hosts.heartbeat.${hostId}`,
  heartbeatAll: "hosts.heartbeat.*",
  /** Machine log lines, as Fly names them: `logs.<app>.<region>.<machine_id>`. */
  logs: (app: string, region: string, machineId: string) => `logs.${app}.${region}.${machineId}`,
  /** The log lines of an app, of one region and one machine when given. */
  logsOf: (app: string, where: { region?: string; machineId?: string } = {}) =>
    `logs.${app}.${where.region ?? "*"}.${where.machineId ?? "*"}`,
  /** Proxy load samples, as the brief names them: `load.<app>`, a LoadSample per proxy every second. */
  load: (app: string) => `load.${app}`,
  loadAll: "load.*",
  /** Proxy presence: `proxy.heartbeat.<proxy_id>`, a ProxyHeartbeat every second. */
  proxyHeartbeat: (proxyId: string) => `proxy.heartbeat.${proxyId}`,
  proxyHeartbeatAll: "proxy.heartbeat.*",
} as const;

/** One machine's load as one proxy sees it. */
export interface MachineLoad {
  machine_id: string;
  region: string;
  /** What the app's concurrency type counts (connections or requests) in flight on the machine now. */
  concurrency: number;
}

/**
 * One proxy's load of one app, taken once a second. Concurrency is counted as the app's
 * [http_service.concurrency] type says; `queued` are requests held by the proxy (at hard_limit, or
 * waiting for a machine to wake), and they count in `concurrency` too: they are load no machine took yet.
 */
export interface LoadSample {
  proxy_id: string;
  /** The proxy's region. */
  region: string;
  app: string;
  /** When the sample was taken (ms since the epoch). */
  ts: number;
  /** The last MACHINES stream sequence the proxy had folded when it took the sample. */
  machines_seq: number;
  /** All in flight for the app through this proxy, queued requests included. */
  concurrency: number;
  queued: number;
  /** Per machine; machines with nothing in flight may be left out. */
  machines: MachineLoad[];
}

/**
 * A proxy is alive and has folded the MACHINES stream up to `machines_seq`. `apps` are the apps it sends
 * load samples for (those with anything in flight in the last minute): for any other app it has nothing
 * in flight, which is what lets the autoscaler know a cordoned machine is drained.
 */
export interface ProxyHeartbeat {
  proxy_id: string;
  region: string;
  ts: number;
  machines_seq: number;
  apps: string[];
}

export interface PlaceRequest {
  machine_id: string;
  app: string;
  region: string;
  cpus: number;
  memory_mb: number;
  /** GPUs the machine's guest asks for (its `gpus`, or 1 with a `gpu_kind`), and of which kind. */
  gpus?: number;
  gpu_kind?: string;
  strategy?: "binpack" | "spread";
  /** The host of the machine's volume: placed there or refused (with a message that says why). */
  host_id?: string;
  /** The guest's host_dedication_id: only hosts of that dedication group; absent, only shared hosts. */
  host_dedication_id?: string;
}

/** Disk room for a volume: on `host_id` when given (extend, a machine's volume) or refused. */
export interface PlaceVolumeRequest {
  volume_id: string;
  app: string;
  region: string;
  size_gb: number;
  host_id?: string;
  /** Hosts not to use (require_unique_zone: those holding the app's other volumes of the same name). */
  avoid_host_ids?: string[];
}

export interface PlaceResult {
  host_id: string;
  region: string;
}

export interface HostHeartbeat {
  host_id: string;
  region: string;
  cpus: number;
  memory_mb: number;
  address: string;
  machines_running: number;
  load1: number;
  free_memory_mb: number;
  ts: number;
}

/**
 * A proxy asks for a sleeping machine to start (autostart). `machines_seq` is the MACHINES sequence of
 * the machine's last message as the proxy folded it: the start's command id is derived from it, so
 * proxies that wake the same sleeping machine record one start.
 */
export interface WakeRequest {
  app: string;
  machine_id: string;
  machines_seq: number;
}

export interface SignalRequest {
  app: string;
  machine_id: string;
  signal: string;
}

/**
 * The start of the instance id an edge app's console lines carry in place of a machine id
 * (`edge-<proxy id>`, published by the proxy that ran the code); machine ids are hex, never with a dash.
 */
export const EDGE_LOG_INSTANCE_PREFIX = "edge-";

/**
 * One line a machine printed: published live on `logs.<app>.<region>.<machine_id>` by the agent that
 * runs it (core NATS), and kept by that agent, which answers the recent ones on `cmd.host.<id>.logs`.
 */
export interface MachineLogLine {
  /** When the host agent read the line: ISO 8601 with milliseconds in UTC. */
  ts: string;
  /** Numbers the machine's lines (across its runs): tells a line from a repeat of its text. */
  seq: number;
  app: string;
  machine_id: string;
  region: string;
  stream: "stdout" | "stderr";
  /** The text of the line, without its newline. */
  line: string;
}

/** Asks a host agent for the recent lines of some of the machines it runs. */
export interface HostLogsRequest {
  app: string;
  machine_ids: string[];
  /** At most this many lines per machine, the newest. */
  limit: number;
}

/** The recent lines of the machines asked for that are on the host, each machine's oldest first. */
export interface HostLogsReply {
  lines: MachineLogLine[];
}

/** Runs a command inside a machine (`cmd.host.<id>.exec`): Fly's exec, already checked by the gateway. */
export interface HostExecRequest {
  app: string;
  machine_id: string;
  /** The argv, at least one element. */
  command: string[];
  /** How long the command may run before it is killed, in ms. */
  timeout_ms: number;
}

/** How an exec ended, in Fly's `flydv1.ExecResponse` shape; output bounded (see the host agent). */
export interface HostExecReply {
  stdout: string;
  stderr: string;
  exit_code: number;
  /** The signal number that killed the command; 0 when it exited by itself. */
  exit_signal: number;
}

/** A command run inside a machine's sandbox, on a terminal of the size given or without one. */
export interface ExecTarget {
  kind: "exec";
  command: string[];
  tty: boolean;
  cols: number;
  rows: number;
}

/**
 * What a tunnel into a machine reaches: a TCP port of the machine (the gateway connects to its
 * private address itself), or a command run inside it (through its host agent).
 */
export type TunnelTarget = { kind: "port"; port: number } | ExecTarget;

/**
 * Asks a host agent for a console tunnel into one of its machines (`cmd.host.<id>.tunnel`); only the
 * gateway may.
 */
export interface HostTunnelRequest {
  app: string;
  machine_id: string;
  target: ExecTarget;
}

/** Where to connect for the tunnel, and the one-time ticket to send first (one line). */
export interface HostTunnelReply {
  address: string;
  port: number;
  ticket: string;
}

/** Asks a host agent for the processes of one of its machines (`cmd.host.<id>.ps`). */
export interface HostPsRequest {
  app: string;
  machine_id: string;
}

/** A socket a process listens on, as Fly's `ListenSocket`: "tcp" or "tcp6", and `address:port`. */
export interface ListenSocket {
  proto: string;
  address: string;
}

/** One process of a machine as it sees itself, in Fly's `ProcessStat` shape (units in the docs). */
export interface ProcessStat {
  /** The pid inside the machine's pid namespace. */
  pid: number;
  command: string;
  /** The working folder inside the machine's root filesystem. */
  directory: string;
  /** Resident memory, bytes. */
  rss: number;
  /** User plus system CPU time, ms. */
  cpu: number;
  /** System CPU time, ms. */
  stime: number;
  /** How long it has run, ms. */
  rtime: number;
  listen_sockets: ListenSocket[];
}

/** Creates a volume (`cmd.volume.create`); asked again with the same command_id, the same volume. */
export interface VolumeCreateRequest {
  command_id: string;
  app: string;
  org: string;
  name: string;
  region: string;
  size_gb: number;
  /** Restore this snapshot (of one of the app's volumes) into the new volume. */
  snapshot_id?: string;
  /** Fork this volume of the app: a snapshot of it now, restored into the new volume. */
  source_volume_id?: string;
  snapshot_retention?: number;
  auto_backup_enabled?: boolean;
  /** Not on a host that holds another of the app's volumes of this name (Fly's default: true). */
  require_unique_zone?: boolean;
}

/** One volume of an app (`cmd.volume.destroy`). */
export interface VolumeRef {
  app: string;
  volume_id: string;
}

export interface VolumeUpdateRequest extends VolumeRef {
  snapshot_retention?: number;
  auto_backup_enabled?: boolean;
}

/** Grows a volume to size_gb (only grows). */
export interface VolumeExtendRequest extends VolumeRef {
  size_gb: number;
}

export interface VolumeSnapshotRequest extends VolumeRef {
  type?: "on_demand" | "scheduled";
}

/** Attaches a volume to a machine, or detaches it from that machine. */
export interface VolumeAttachRequest extends VolumeRef {
  machine_id: string;
}

/**
 * The volume service's answer to a `cmd.volume.*` command (R: the volume, or a snapshot's) with `seq`:
 * the VOLUMES sequence of the volume's last message when it answered, which a reader waits for to
 * see its own write.
 */
export type VolumeCommandReply<R> = R & { seq: number };

/** The volume service's answer: the volume as the VOLUMES stream has it (extend adds needs_restart). */
export type VolumeReply = Volume & { needs_restart?: boolean };

/** Makes a volume's disk on its host (`cmd.host.<id>.volume.create`), from a snapshot when given. */
export interface HostVolumeCreateRequest {
  volume_id: string;
  app: string;
  size_gb: number;
  snapshot?: { volume_id: string; snapshot_id: string };
}

/** Grows a volume's disk and filesystem (`volume.extend`), online when mounted. */
export interface HostVolumeExtendRequest {
  volume_id: string;
  size_gb: number;
}

/** Snapshots a volume into the VOLUME_SNAPSHOTS bucket (`volume.snapshot`). */
export interface HostVolumeSnapshotRequest {
  volume_id: string;
  snapshot_id: string;
}

export interface HostVolumeSnapshotReply {
  /** Bytes of the raw image. */
  size: number;
  /** Bytes stored (zstd). */
  stored_size: number;
  /** "sha256:..." of the raw image. */
  digest: string;
  /** How long the filesystem was frozen; 0 when not mounted. */
  freeze_ms: number;
}

/** Deletes a volume's disk (`volume.delete`); refused while mounted. */
export interface HostVolumeDeleteRequest {
  volume_id: string;
}

/** Asks a host for its volumes' filesystem figures (`volume.stat`); reply: HostVolumeStatReply. */
export interface HostVolumeStatRequest {
  volume_ids: string[];
}

/** A volume's disk as its host sees it (statfs of the mounted filesystem, or of the image). */
export interface VolumeStat {
  size_gb: number;
  block_size: number;
  blocks: number;
  blocks_free: number;
  blocks_avail: number;
  used_bytes: number;
  mounted: boolean;
}

/** The stats of the volumes asked for that are on the host, by volume id. */
export type HostVolumeStatReply = Record<string, VolumeStat>;

/** Creates a Postgres cluster (`cmd.postgres.create`); asked again with the same command_id, the same cluster. */
export interface PgCreateRequest {
  command_id: string;
  /** The cluster's name, which is its app's name. */
  name: string;
  org: string;
  region: string;
  /** Fly's VM size preset, e.g. shared-cpu-1x. */
  vm_size: string;
  volume_size_gb: number;
  /** Members to make: 1, or 3+ for synchronous replication and failover. */
  initial_size: number;
}

/** One cluster (`cmd.postgres.status`, `failover`, `destroy`). */
export interface PgClusterRef {
  cluster: string;
}

/** The clusters of one org, or of every org (`cmd.postgres.list`). */
export interface PgListRequest {
  org?: string;
}

/** A database and user on the cluster for an app (`cmd.postgres.attach`). */
export interface PgAttachRequest {
  cluster: string;
  app: string;
  /** Default: the app's name with `-` as `_`. */
  database_name?: string;
  /** Default: DATABASE_URL. */
  variable_name?: string;
}

/** What the gateway sets as the app's secret `variable`; the password is in the URI only, never recorded. */
export interface PgAttachReply {
  database: string;
  user: string;
  variable: string;
  connection_uri: string;
}

/** Drops the app's database and user (`cmd.postgres.detach`). */
export interface PgDetachRequest {
  cluster: string;
  app: string;
}

/** How a planned switchover went. */
export interface PgFailoverReply {
  old_primary_id: string;
  new_primary_id: string;
  timeline: number;
  duration_ms: number;
}

/** One member as the manager knows it, with its live figures (null when it did not answer). */
export interface PgMemberView {
  id: string;
  region: string;
  host_id: string;
  volume_id: string;
  /** The recorded role: "primary" or "replica" (null before it is ready). */
  role: string | null;
  /** The member agent's state (empty, starting, primary, replica, stopped), or "unreachable". */
  state: string;
  fenced: boolean;
  timeline: number | null;
  /** Its current (primary) or replayed (replica) WAL position, as Postgres prints it. */
  lsn: string | null;
  /** A replica's replay lag as its primary reports it. */
  replay_lag_ms: number | null;
  healthy: boolean;
}

/** A cluster as the manager answers it. */
export interface PgClusterView {
  name: string;
  org: string;
  region: string;
  vm_size: string;
  volume_size_gb: number;
  /** creating, ready, failed or destroyed. */
  status: string;
  primary_id: string | null;
  timeline: number | null;
  members: PgMemberView[];
  attachments: Array<{ app: string; database: string; user: string; variable: string }>;
  created_at: string;
}

/** The answer of `cmd.postgres.list`. */
export interface PgClusterList {
  clusters: PgClusterView[];
}

/**
 * Copies a database into the cluster (`cmd.postgres.import`): pg_dump of `source_url` piped to
 * pg_restore into the database of the same name, run by a temporary machine of the cluster's app.
 */
export interface PgImportRequest {
  cluster: string;
  /** postgres:// or postgresql:// with a host; its password is never logged or recorded. */
  source_url: string;
  options?: {
    /** Drop the objects the dump holds before making them (pg_restore --clean --if-exists). */
    clean?: boolean;
    /** Rows only (pg_dump --data-only). */
    data_only?: boolean;
    /** Definitions only (pg_dump --schema-only). */
    schema_only?: boolean;
  };
}

/** How an import went: the importer's exit code (0: copied) and its last output lines. */
export interface PgImportReply {
  cluster: string;
  /** The database written, the source's. */
  database: string;
  /** The temporary machine that ran the importer (destroyed since). */
  machine_id: string;
  exit_code: number | null;
  log_tail: string[];
  duration_ms: number;
}

/** One base backup of a cluster (`cmd.postgres.backup_create`, `backup_list`). */
export interface PgBackupView {
  id: string;
  status: "running" | "completed" | "failed";
  /** The member (the primary then) it was taken on. */
  member_id: string;
  started_at: string;
  finished_at: string | null;
  start_lsn: string | null;
  timeline: number | null;
  /** Bytes of the tar, and of its gzip copy in PG_BACKUPS. */
  size: number | null;
  stored_size: number | null;
  sha256: string | null;
  error: string | null;
}

/** The answer of `cmd.postgres.backup_list`: newest first. */
export interface PgBackupList {
  backups: PgBackupView[];
}

/**
 * A point-in-time restore into a new cluster `name` (`cmd.postgres.backup_restore`): the newest
 * completed base backup of `cluster` finished before `time` plus its archived WAL, recovered to
 * `time` (RFC 3339; none: the end of the archive). The new cluster has the source's org, region,
 * vm size, volume size and member count; asked again with the same command_id, the same cluster.
 */
export interface PgRestoreRequest {
  command_id: string;
  cluster: string;
  name: string;
  time?: string;
}

import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";
import { volumeSizeProblem } from "../volumes/volume.js";
import { pgClusterNameProblem, pgClusterSizeProblem, pgIdentifierProblem } from "./names.js";

export {
  defaultPgIdentifier,
  MAX_PG_CLUSTER_SIZE,
  MIN_PG_CLUSTER_SIZE,
  PG_IDENTIFIER_PATTERN,
  pgClusterNameProblem,
  pgClusterSizeProblem,
  pgIdentifierProblem,
} from "./names.js";

const messages = {
  PgClusterCreateRequested: hangar.v1.PgClusterCreateRequested,
  PgMemberAdded: hangar.v1.PgMemberAdded,
  PgMemberReady: hangar.v1.PgMemberReady,
  PgClusterReady: hangar.v1.PgClusterReady,
  PgClusterCreateFailed: hangar.v1.PgClusterCreateFailed,
  PgFailoverStarted: hangar.v1.PgFailoverStarted,
  PgCandidateChosen: hangar.v1.PgCandidateChosen,
  PgMemberPromoted: hangar.v1.PgMemberPromoted,
  PgMemberRepointed: hangar.v1.PgMemberRepointed,
  PgFailoverCompleted: hangar.v1.PgFailoverCompleted,
  PgFailoverAbandoned: hangar.v1.PgFailoverAbandoned,
  PgMemberFenced: hangar.v1.PgMemberFenced,
  PgMemberUnfenced: hangar.v1.PgMemberUnfenced,
  PgMemberRejoined: hangar.v1.PgMemberRejoined,
  PgDatabaseAttached: hangar.v1.PgDatabaseAttached,
  PgDatabaseDetached: hangar.v1.PgDatabaseDetached,
  PgClusterDestroyed: hangar.v1.PgClusterDestroyed,
  PgBackupStarted: hangar.v1.PgBackupStarted,
  PgBackupCompleted: hangar.v1.PgBackupCompleted,
  PgBackupFailed: hangar.v1.PgBackupFailed,
};

/** A Postgres cluster's events. */
export type PgClusterEvent = EventOf<typeof messages>;

/** The PGCLUSTERS stream: one subject per cluster, `ev.pgcluster.<cluster>` (the cluster's app name). */
export const pgclustersStream = defineStream({
  name: "PGCLUSTERS",
  subjectPrefix: "ev.pgcluster",
  codec: eventCodec(messages),
});

/** A cluster's aggregate id: its name. */
export function pgClusterAggregateId(cluster: string): string {
  return cluster;
}

export type PgClusterStatus = "creating" | "ready" | "failed" | "destroyed";
export type PgRole = "primary" | "replica";
export type PgFailoverKind = "failover" | "switchover";
export type PgRejoinMethod = "rewind" | "basebackup" | "follow";

/** One member: a machine with its own volume. */
export interface PgMember {
  id: string;
  index: number;
  volume_id: string;
  host_id: string;
  /** Null until it first reports ready. */
  role: PgRole | null;
  /** Ready in its role; false for an old primary until it rejoins. */
  ready: boolean;
  fenced: boolean;
}

/** The change of primary in flight. */
export interface PgFailover {
  id: string;
  kind: PgFailoverKind;
  old_primary_id: string;
  started_at_ms: number;
  candidate_id?: string;
  promoted?: boolean;
  /** The timeline the candidate was promoted to. */
  timeline?: number;
  repointed: string[];
}

/** An app's database on the cluster, in the app's secret `variable`. */
export interface PgAttachment {
  app: string;
  database: string;
  user: string;
  variable: string;
}

/** A base backup of the cluster (docs/postgres.md "Backups"). */
export interface PgBackup {
  backup_id: string;
  member_id: string;
  status: "running" | "completed" | "failed";
  started_at_ms: number;
  finished_at_ms?: number;
  start_lsn?: string;
  timeline?: number;
  size?: number;
  stored_size?: number;
  sha256?: string;
  error?: string;
}

/** Where a restored cluster's first member comes from. */
export interface PgRestoreSource {
  /** The cluster whose archive (PG_BACKUPS) is restored. */
  from: string;
  backup_id: string;
  /** RFC 3339; empty: to the end of the archived WAL. */
  target_time: string;
}

/** What the manager knows of one cluster. */
export interface PgCluster {
  cluster: string;
  org: string;
  region: string;
  vm_size: string;
  cpus: number;
  memory_mb: number;
  volume_size_gb: number;
  initial_size: number;
  image: string;
  status: PgClusterStatus;
  /** Empty until the create bootstrapped a primary. */
  primary_id: string;
  timeline: number;
  members: Record<string, PgMember>;
  failover: PgFailover | null;
  attachments: PgAttachment[];
  /** RFC 3339 time of the create. */
  created_at: string;
  /** The create command's id: the same create asked again is this cluster. */
  create_command_id: string;
  /** Why the create failed (status "failed"). */
  error?: string;
  /** Base backups, oldest first. */
  backups: PgBackup[];
  /** Set on a cluster created by a restore. */
  restore?: PgRestoreSource;
}

/** A cluster's state; null before its create. */
export type PgClusterState = PgCluster | null;

export interface CreatePgClusterSpec {
  cluster: string;
  org: string;
  region: string;
  vmSize: string;
  cpus: number;
  memoryMb: number;
  volumeSizeGb: number;
  initialSize: number;
  image: string;
  requestedAtMs: number;
  commandId: string;
  /** A restore: the first member is recovered from this backup instead of bootstrapped. */
  restore?: { from: string; backupId: string; targetTime: string };
}

export type PgClusterCommand =
  | ({ type: "CreatePgCluster" } & CreatePgClusterSpec)
  | { type: "AddMember"; memberId: string; volumeId: string; hostId: string }
  | { type: "MarkMemberReady"; memberId: string; role: PgRole; timeline: number }
  | { type: "MarkClusterReady"; primaryId: string }
  | { type: "FailCreate"; reason: string }
  | { type: "StartFailover"; failoverId: string; kind: PgFailoverKind; reason: string; startedAtMs: number }
  | { type: "ChooseCandidate"; failoverId: string; memberId: string; lsn: string; lsnBytes: number }
  | { type: "PromoteMember"; failoverId: string; memberId: string; timeline: number }
  | { type: "RepointMember"; failoverId: string; memberId: string }
  | { type: "CompleteFailover"; failoverId: string; completedAtMs: number }
  | { type: "AbandonFailover"; failoverId: string; reason: string }
  | { type: "MarkFenced"; memberId: string; atMs: number }
  | { type: "MarkUnfenced"; memberId: string; atMs: number }
  | { type: "MarkRejoined"; memberId: string; primaryId: string; method: PgRejoinMethod }
  | { type: "AttachDatabase"; app: string; database: string; user: string; variable: string }
  | { type: "DetachDatabase"; app: string }
  | { type: "DestroyPgCluster" }
  | { type: "StartBackup"; backupId: string; memberId: string; startedAtMs: number }
  | {
      type: "CompleteBackup";
      backupId: string;
      startLsn: string;
      timeline: number;
      size: number;
      storedSize: number;
      sha256: string;
      finishedAtMs: number;
    }
  | { type: "FailBackup"; backupId: string; reason: string };

function invalid(problem: string | undefined): void {
  if (problem) throw new DomainError(problem, "invalid_argument");
}

function existing(state: PgClusterState): PgCluster {
  if (state === null || state.status === "destroyed")
    throw new DomainError("postgres cluster not found", "not_found");
  return state;
}

function memberOf(c: PgCluster, memberId: string): PgMember {
  const m = c.members[memberId];
  if (!m) throw new DomainError(`${memberId} is not a member of cluster ${c.cluster}`, "not_found");
  return m;
}

function withStatus(c: PgCluster, status: PgClusterStatus, doing: string): PgCluster {
  if (c.status !== status)
    throw new DomainError(`cannot ${doing}: cluster ${c.cluster} is ${c.status}`, "failed_precondition");
  return c;
}

/** The failover `failoverId` in flight, refused when another (or none) is. */
function runningFailover(c: PgCluster, failoverId: string): PgFailover {
  if (c.failover === null || c.failover.id !== failoverId)
    throw new DomainError(
      `failover ${failoverId} of cluster ${c.cluster} is not in flight${c.failover ? ` (${c.failover.id} is)` : ""}`,
      "failed_precondition",
    );
  return c.failover;
}

function positive(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) invalid(`${what} must be a whole number of at least 1, not ${n}`);
}

function decideCreate(command: CreatePgClusterSpec, state: PgClusterState): PgClusterEvent[] {
  if (state !== null) {
    if (state.create_command_id === command.commandId) return [];
    throw new DomainError(`postgres cluster ${state.cluster} already exists`, "already_exists");
  }
  invalid(pgClusterNameProblem(command.cluster));
  invalid(pgClusterSizeProblem(command.initialSize));
  invalid(volumeSizeProblem(command.volumeSizeGb));
  positive("cpus", command.cpus);
  positive("memory_mb", command.memoryMb);
  if (!command.org || !command.region || !command.vmSize || !command.image || !command.commandId)
    invalid("a cluster needs an org, a region, a vm size, an image and a command id");
  return [
    {
      type: "PgClusterCreateRequested",
      data: {
        cluster: command.cluster,
        org: command.org,
        region: command.region,
        vmSize: command.vmSize,
        cpus: command.cpus,
        memoryMb: command.memoryMb,
        volumeSizeGb: command.volumeSizeGb,
        initialSize: command.initialSize,
        image: command.image,
        requestedAtMs: command.requestedAtMs,
        commandId: command.commandId,
        ...(command.restore
          ? {
              restoreFrom: command.restore.from,
              restoreBackupId: command.restore.backupId,
              restoreTargetTime: command.restore.targetTime,
            }
          : {}),
      },
    },
  ];
}

/** Base backups: one running at a time, on a ready cluster; completed or failed once. */
function decideBackupStep(command: PgClusterCommand, c: PgCluster): PgClusterEvent[] {
  const cluster = c.cluster;
  const known = (id: string) => c.backups.find((b) => b.backup_id === id);
  switch (command.type) {
    case "StartBackup": {
      if (known(command.backupId)) return [];
      withStatus(c, "ready", "back it up");
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(command.backupId))
        invalid("a backup id is 1-64 letters, digits, - or _");
      memberOf(c, command.memberId);
      const running = c.backups.find((b) => b.status === "running");
      if (running)
        throw new DomainError(
          `backup ${running.backup_id} of cluster ${cluster} is running; try again when it is done`,
          "failed_precondition",
        );
      return [
        {
          type: "PgBackupStarted",
          data: {
            cluster,
            backupId: command.backupId,
            memberId: command.memberId,
            startedAtMs: command.startedAtMs,
          },
        },
      ];
    }
    case "CompleteBackup":
    case "FailBackup": {
      const b = known(command.backupId);
      if (!b)
        throw new DomainError(`backup ${command.backupId} of cluster ${cluster} not found`, "not_found");
      const done = command.type === "CompleteBackup" ? "completed" : "failed";
      if (b.status === done) return [];
      if (b.status !== "running")
        throw new DomainError(`backup ${b.backup_id} is ${b.status} already`, "failed_precondition");
      if (command.type === "FailBackup")
        return [{ type: "PgBackupFailed", data: { cluster, backupId: b.backup_id, reason: command.reason } }];
      if (!command.sha256 || !command.startLsn || command.timeline < 1)
        invalid("a completed backup needs its sha256, start LSN and timeline");
      return [
        {
          type: "PgBackupCompleted",
          data: {
            cluster,
            backupId: b.backup_id,
            startLsn: command.startLsn,
            timeline: command.timeline,
            size: command.size,
            storedSize: command.storedSize,
            sha256: command.sha256,
            startedAtMs: b.started_at_ms,
            finishedAtMs: command.finishedAtMs,
          },
        },
      ];
    }
    default:
      throw new Error(`not a backup step: ${command.type}`);
  }
}

/** The create's steps: members added, ready, then the cluster ready (or failed). */
function decideCreateStep(command: PgClusterCommand, c: PgCluster): PgClusterEvent[] {
  const cluster = c.cluster;
  switch (command.type) {
    case "AddMember": {
      const known = c.members[command.memberId];
      if (known) {
        if (known.volume_id === command.volumeId && known.host_id === command.hostId) return [];
        throw new DomainError(`member ${command.memberId} exists with another volume or host`, "conflict");
      }
      if (c.status !== "creating" && c.status !== "ready")
        throw new DomainError(
          `cannot add a member: cluster ${cluster} is ${c.status}`,
          "failed_precondition",
        );
      if (!command.memberId || !command.volumeId || !command.hostId)
        invalid("a member needs a machine id, a volume and a host");
      const index = Object.values(c.members).reduce((next, m) => Math.max(next, m.index + 1), 0);
      return [
        {
          type: "PgMemberAdded",
          data: {
            cluster,
            memberId: command.memberId,
            index,
            volumeId: command.volumeId,
            hostId: command.hostId,
          },
        },
      ];
    }
    case "MarkMemberReady": {
      const m = memberOf(c, command.memberId);
      if (c.status !== "creating" && c.status !== "ready")
        throw new DomainError(
          `cannot mark a member ready: cluster ${cluster} is ${c.status}`,
          "failed_precondition",
        );
      if (m.ready && m.role === command.role) return [];
      if (command.role === "replica" && m.id === c.primary_id)
        throw new DomainError(
          `${m.id} is the primary of cluster ${cluster}; it turns replica by rejoining`,
          "failed_precondition",
        );
      if (command.role === "primary" && c.primary_id !== "" && c.primary_id !== m.id)
        throw new DomainError(
          `cluster ${cluster}'s primary is ${c.primary_id}; a new primary comes from a failover`,
          "failed_precondition",
        );
      return [
        {
          type: "PgMemberReady",
          data: { cluster, memberId: m.id, role: command.role, timeline: command.timeline },
        },
      ];
    }
    case "MarkClusterReady": {
      if (c.status === "ready" && c.primary_id === command.primaryId) return [];
      withStatus(c, "creating", "mark it ready");
      const m = memberOf(c, command.primaryId);
      if (!m.ready || m.role !== "primary")
        throw new DomainError(`member ${m.id} is not a ready primary`, "failed_precondition");
      const waiting = Object.values(c.members).filter((x) => !x.ready);
      if (waiting.length > 0)
        throw new DomainError(
          `members ${waiting.map((x) => x.id).join(", ")} of cluster ${cluster} are not ready`,
          "failed_precondition",
        );
      return [{ type: "PgClusterReady", data: { cluster, primaryId: m.id } }];
    }
    case "FailCreate": {
      if (c.status === "failed") return [];
      withStatus(c, "creating", "fail its create");
      return [{ type: "PgClusterCreateFailed", data: { cluster, reason: command.reason } }];
    }
    default:
      throw new Error(`not a create step: ${command.type}`);
  }
}

/** A change of primary: started, candidate chosen, promoted, others repointed, completed (or abandoned). */
function decideFailoverStep(command: PgClusterCommand, c: PgCluster): PgClusterEvent[] {
  const cluster = c.cluster;
  switch (command.type) {
    case "StartFailover": {
      if (c.failover?.id === command.failoverId) return [];
      withStatus(c, "ready", `start a ${command.kind}`);
      if (c.failover !== null)
        throw new DomainError(
          `a ${c.failover.kind} of cluster ${cluster} is in flight (${c.failover.id}); try again when it is done`,
          "failed_precondition",
        );
      if (command.kind === "switchover" && Object.keys(c.members).length < 2)
        throw new DomainError(`cluster ${cluster} has no replica to switch over to`, "failed_precondition");
      return [
        {
          type: "PgFailoverStarted",
          data: {
            cluster,
            failoverId: command.failoverId,
            kind: command.kind,
            oldPrimaryId: c.primary_id,
            reason: command.reason,
            startedAtMs: command.startedAtMs,
          },
        },
      ];
    }
    case "ChooseCandidate": {
      const f = runningFailover(c, command.failoverId);
      const m = memberOf(c, command.memberId);
      if (f.candidate_id === m.id) return [];
      if (f.promoted)
        throw new DomainError(
          `${f.candidate_id} is promoted already; the candidate cannot change`,
          "failed_precondition",
        );
      if (m.id === f.old_primary_id)
        throw new DomainError(`${m.id} is the old primary, not a candidate`, "failed_precondition");
      return [
        {
          type: "PgCandidateChosen",
          data: { cluster, failoverId: f.id, memberId: m.id, lsn: command.lsn, lsnBytes: command.lsnBytes },
        },
      ];
    }
    case "PromoteMember": {
      const f = runningFailover(c, command.failoverId);
      if (f.candidate_id !== command.memberId)
        throw new DomainError(
          `${command.memberId} is not the chosen candidate of failover ${f.id}${f.candidate_id ? ` (${f.candidate_id} is)` : ""}`,
          "failed_precondition",
        );
      if (f.promoted) return [];
      return [
        {
          type: "PgMemberPromoted",
          data: { cluster, failoverId: f.id, memberId: command.memberId, timeline: command.timeline },
        },
      ];
    }
    case "RepointMember": {
      const f = runningFailover(c, command.failoverId);
      const m = memberOf(c, command.memberId);
      if (!f.promoted || f.candidate_id === undefined)
        throw new DomainError(`failover ${f.id} has promoted no member yet`, "failed_precondition");
      if (m.id === f.candidate_id)
        throw new DomainError(`${m.id} is the new primary; it follows nobody`, "failed_precondition");
      if (f.repointed.includes(m.id)) return [];
      return [
        {
          type: "PgMemberRepointed",
          data: { cluster, failoverId: f.id, memberId: m.id, primaryId: f.candidate_id },
        },
      ];
    }
    case "CompleteFailover": {
      const f = runningFailover(c, command.failoverId);
      if (!f.promoted || f.candidate_id === undefined)
        throw new DomainError(`failover ${f.id} has promoted no member yet`, "failed_precondition");
      return [
        {
          type: "PgFailoverCompleted",
          data: {
            cluster,
            failoverId: f.id,
            newPrimaryId: f.candidate_id,
            timeline: f.timeline ?? c.timeline,
            durationMs: Math.max(0, command.completedAtMs - f.started_at_ms),
          },
        },
      ];
    }
    case "AbandonFailover": {
      if (c.failover === null) return [];
      const f = runningFailover(c, command.failoverId);
      if (f.promoted)
        throw new DomainError(
          `failover ${f.id} promoted ${f.candidate_id}; it can only be completed`,
          "failed_precondition",
        );
      return [{ type: "PgFailoverAbandoned", data: { cluster, failoverId: f.id, reason: command.reason } }];
    }
    default:
      throw new Error(`not a failover step: ${command.type}`);
  }
}

/**
 * The Postgres cluster aggregate. The manager records the create's steps and every step of a change
 * of primary; the decider keeps them in order (one failover at a time, only the chosen candidate is
 * promoted, a failover completes only after its promotion) and answers a repeated step with no
 * events, so a retried or resumed command is harmless.
 */
export const pgClusterDecider: Decider<PgClusterState, PgClusterCommand, PgClusterEvent> = {
  initialState: () => null,
  decide(command, state) {
    if (command.type === "CreatePgCluster") return decideCreate(command, state);
    if (command.type === "DestroyPgCluster") {
      if (state === null) throw new DomainError("postgres cluster not found", "not_found");
      if (state.status === "destroyed") return [];
      return [{ type: "PgClusterDestroyed", data: { cluster: state.cluster } }];
    }
    const c = existing(state);
    const cluster = c.cluster;
    switch (command.type) {
      case "AddMember":
      case "MarkMemberReady":
      case "MarkClusterReady":
      case "FailCreate":
        return decideCreateStep(command, c);
      case "StartFailover":
      case "ChooseCandidate":
      case "PromoteMember":
      case "RepointMember":
      case "CompleteFailover":
      case "AbandonFailover":
        return decideFailoverStep(command, c);
      case "StartBackup":
      case "CompleteBackup":
      case "FailBackup":
        return decideBackupStep(command, c);
      case "MarkFenced": {
        const m = memberOf(c, command.memberId);
        if (m.fenced) return [];
        return [{ type: "PgMemberFenced", data: { cluster, memberId: m.id, atMs: command.atMs } }];
      }
      case "MarkUnfenced": {
        const m = memberOf(c, command.memberId);
        if (!m.fenced) return [];
        return [{ type: "PgMemberUnfenced", data: { cluster, memberId: m.id, atMs: command.atMs } }];
      }
      case "MarkRejoined": {
        const m = memberOf(c, command.memberId);
        if (m.id === c.primary_id)
          throw new DomainError(
            `${m.id} is the primary of cluster ${cluster}; it rejoins nobody`,
            "failed_precondition",
          );
        if (command.primaryId !== c.primary_id)
          throw new DomainError(
            `cluster ${cluster}'s primary is ${c.primary_id}, not ${command.primaryId}`,
            "failed_precondition",
          );
        return [
          {
            type: "PgMemberRejoined",
            data: { cluster, memberId: m.id, primaryId: c.primary_id, method: command.method },
          },
        ];
      }
      case "AttachDatabase": {
        withStatus(c, "ready", "attach a database");
        invalid(pgIdentifierProblem("database", command.database));
        invalid(pgIdentifierProblem("user", command.user));
        if (!command.app || !command.variable) invalid("an attach needs an app and a variable name");
        if (c.attachments.some((a) => a.app === command.app && a.variable === command.variable))
          throw new DomainError(
            `app ${command.app} already has ${command.variable} from cluster ${cluster}; detach it first or pick another variable name`,
            "conflict",
          );
        if (c.attachments.some((a) => a.user === command.user && a.app !== command.app))
          throw new DomainError(`user ${command.user} belongs to another app's attachment`, "conflict");
        return [
          {
            type: "PgDatabaseAttached",
            data: {
              cluster,
              app: command.app,
              database: command.database,
              user: command.user,
              variable: command.variable,
            },
          },
        ];
      }
      case "DetachDatabase": {
        const of = c.attachments.filter((a) => a.app === command.app);
        if (of.length === 0)
          throw new DomainError(`app ${command.app} is not attached to cluster ${cluster}`, "not_found");
        const pairs = new Map(of.map((a) => [`${a.database}\0${a.user}`, a]));
        return [...pairs.values()].map((a) => ({
          type: "PgDatabaseDetached" as const,
          data: { cluster, app: a.app, database: a.database, user: a.user },
        }));
      }
    }
  },
  evolve(state, event) {
    if (event.type === "PgClusterCreateRequested") {
      const d = event.data;
      return {
        cluster: d.cluster ?? "",
        org: d.org ?? "",
        region: d.region ?? "",
        vm_size: d.vmSize ?? "",
        cpus: d.cpus ?? 0,
        memory_mb: d.memoryMb ?? 0,
        volume_size_gb: d.volumeSizeGb ?? 0,
        initial_size: d.initialSize ?? 0,
        image: d.image ?? "",
        status: "creating",
        primary_id: "",
        timeline: 0,
        members: {},
        failover: null,
        attachments: [],
        created_at: new Date(Number(d.requestedAtMs ?? 0)).toISOString(),
        create_command_id: d.commandId ?? "",
        backups: [],
        ...(d.restoreFrom
          ? {
              restore: {
                from: d.restoreFrom,
                backup_id: d.restoreBackupId ?? "",
                target_time: d.restoreTargetTime ?? "",
              },
            }
          : {}),
      };
    }
    if (state === null) return state;
    return evolveCluster(state, event);
  },
};

function withMember(c: PgCluster, id: string, change: Partial<PgMember>): PgCluster {
  const m = c.members[id];
  if (!m) return c;
  return { ...c, members: { ...c.members, [id]: { ...m, ...change } } };
}

function withBackup(c: PgCluster, id: string, change: Partial<PgBackup>): PgCluster {
  return { ...c, backups: c.backups.map((b) => (b.backup_id === id ? { ...b, ...change } : b)) };
}

function evolveCluster(c: PgCluster, event: PgClusterEvent): PgCluster {
  switch (event.type) {
    case "PgClusterCreateRequested":
      return c;
    case "PgMemberAdded": {
      const d = event.data;
      const id = d.memberId ?? "";
      const member: PgMember = {
        id,
        index: d.index ?? 0,
        volume_id: d.volumeId ?? "",
        host_id: d.hostId ?? "",
        role: null,
        ready: false,
        fenced: false,
      };
      return { ...c, members: { ...c.members, [id]: member } };
    }
    case "PgMemberReady": {
      const d = event.data;
      const role: PgRole = d.role === "primary" ? "primary" : "replica";
      const next = withMember(c, d.memberId ?? "", { role, ready: true });
      return role === "primary"
        ? { ...next, primary_id: d.memberId ?? "", timeline: d.timeline ?? next.timeline }
        : next;
    }
    case "PgClusterReady":
      return { ...c, status: "ready", primary_id: event.data.primaryId ?? c.primary_id };
    case "PgClusterCreateFailed":
      return { ...c, status: "failed", error: event.data.reason ?? "" };
    case "PgFailoverStarted": {
      const d = event.data;
      return {
        ...c,
        failover: {
          id: d.failoverId ?? "",
          kind: d.kind === "switchover" ? "switchover" : "failover",
          old_primary_id: d.oldPrimaryId ?? "",
          started_at_ms: Number(d.startedAtMs ?? 0),
          repointed: [],
        },
      };
    }
    case "PgCandidateChosen":
      return c.failover ? { ...c, failover: { ...c.failover, candidate_id: event.data.memberId ?? "" } } : c;
    case "PgMemberPromoted": {
      const d = event.data;
      const id = d.memberId ?? "";
      const timeline = d.timeline ?? c.timeline;
      // The old primary is no longer ready in any role: it must rejoin (or be repointed) first.
      const demoted =
        c.primary_id && c.primary_id !== id
          ? withMember(c, c.primary_id, { role: "replica", ready: false })
          : c;
      const promoted = withMember(demoted, id, { role: "primary", ready: true, fenced: false });
      return {
        ...promoted,
        primary_id: id,
        timeline,
        failover: c.failover ? { ...c.failover, promoted: true, timeline } : null,
      };
    }
    case "PgMemberRepointed": {
      const id = event.data.memberId ?? "";
      const next = withMember(c, id, { role: "replica", ready: true, fenced: false });
      return next.failover
        ? { ...next, failover: { ...next.failover, repointed: [...next.failover.repointed, id] } }
        : next;
    }
    case "PgFailoverCompleted":
      return {
        ...c,
        primary_id: event.data.newPrimaryId ?? c.primary_id,
        timeline: event.data.timeline ?? c.timeline,
        failover: null,
      };
    case "PgFailoverAbandoned":
      return { ...c, failover: null };
    case "PgMemberFenced":
      return withMember(c, event.data.memberId ?? "", { fenced: true });
    case "PgMemberUnfenced":
      return withMember(c, event.data.memberId ?? "", { fenced: false });
    case "PgMemberRejoined":
      return withMember(c, event.data.memberId ?? "", { role: "replica", ready: true, fenced: false });
    case "PgDatabaseAttached": {
      const d = event.data;
      const a: PgAttachment = {
        app: d.app ?? "",
        database: d.database ?? "",
        user: d.user ?? "",
        variable: d.variable ?? "",
      };
      return { ...c, attachments: [...c.attachments, a] };
    }
    case "PgDatabaseDetached": {
      const d = event.data;
      return {
        ...c,
        attachments: c.attachments.filter(
          (a) => !(a.app === d.app && a.database === d.database && a.user === d.user),
        ),
      };
    }
    case "PgClusterDestroyed":
      return { ...c, status: "destroyed", failover: null };
    case "PgBackupStarted": {
      const d = event.data;
      const b: PgBackup = {
        backup_id: d.backupId ?? "",
        member_id: d.memberId ?? "",
        status: "running",
        started_at_ms: Number(d.startedAtMs ?? 0),
      };
      return { ...c, backups: [...c.backups, b] };
    }
    case "PgBackupCompleted": {
      const d = event.data;
      return withBackup(c, d.backupId ?? "", {
        status: "completed",
        start_lsn: d.startLsn ?? "",
        timeline: d.timeline ?? 0,
        size: Number(d.size ?? 0),
        stored_size: Number(d.storedSize ?? 0),
        sha256: d.sha256 ?? "",
        finished_at_ms: Number(d.finishedAtMs ?? 0),
      });
    }
    case "PgBackupFailed":
      return withBackup(c, event.data.backupId ?? "", { status: "failed", error: event.data.reason ?? "" });
  }
}

import { randomBytes } from "node:crypto";
import type { PgBackup, PgCluster } from "@hangar/domain";
import { DomainError } from "@hangar/eventstore";
import {
  CommandError,
  type PgBackupList,
  type PgBackupView,
  type PgClusterRef,
  type PgClusterView,
  type PgRestoreRequest,
} from "@hangar/service";
import { Gauge, type Registry } from "prom-client";
import type { BackupStore } from "./backup-store.js";
import { type AgentEndpoint, drainWal, switchWal, takeBaseBackup } from "./backup-transfer.js";
import { type ClusterOps, orderedMembers } from "./cluster-ops.js";
import { recordCreate } from "./create.js";

/** A backup as the API shows it. */
export function backupView(b: PgBackup): PgBackupView {
  return {
    id: b.backup_id,
    status: b.status,
    member_id: b.member_id,
    started_at: new Date(b.started_at_ms).toISOString(),
    finished_at: b.finished_at_ms ? new Date(b.finished_at_ms).toISOString() : null,
    start_lsn: b.start_lsn ?? null,
    timeline: b.timeline ?? null,
    size: b.size ?? null,
    stored_size: b.stored_size ?? null,
    sha256: b.sha256 ?? null,
    error: b.error ?? null,
  };
}

/**
 * The base backup a restore to `targetMs` starts from: the newest completed one that finished at or
 * before it (recovery can only stop after a backup's end); undefined target: the newest.
 */
export function backupFor(backups: readonly PgBackup[], targetMs?: number): PgBackup | undefined {
  let best: PgBackup | undefined;
  for (const b of backups) {
    if (b.status !== "completed" || b.finished_at_ms === undefined) continue;
    if (targetMs !== undefined && b.finished_at_ms > targetMs) continue;
    if (!best || (best.finished_at_ms ?? 0) < b.finished_at_ms) best = b;
  }
  return best;
}

/** Seconds since the cluster's last completed base backup; undefined when it has none. */
export function backupAgeSeconds(c: PgCluster, nowMs: number): number | undefined {
  const last = backupFor(c.backups);
  return last?.finished_at_ms === undefined ? undefined : Math.max(0, (nowMs - last.finished_at_ms) / 1000);
}

/** A new backup id: sortable by time, unique. */
function newBackupId(nowMs: number): string {
  const stamp = new Date(nowMs)
    .toISOString()
    .replace(/[-:TZ]/g, "")
    .replace(".", "");
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

/**
 * Backups of the manager's clusters (docs/postgres.md "Backups"): members cannot reach NATS, so the
 * manager does the moving over each member's control API. The lease holder drains every started
 * member's WAL outbox into PG_BACKUPS every few seconds; `backup_create` streams a base backup of
 * the primary into the store and records it; `backup_restore` records a new cluster whose create
 * restores its first member from the archive (create.ts) instead of bootstrapping it.
 */
export class PostgresBackups {
  private leader = false;
  private timer: NodeJS.Timeout | undefined;
  private draining = false;
  private readonly startedAtMs = Date.now();
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly ops: ClusterOps,
    private readonly store: BackupStore,
    registry: Registry,
    private readonly walIntervalMs = 5_000,
  ) {
    const clusters = () => ops.allClusters().filter((c) => c.status === "ready");
    new Gauge({
      name: "hangar_pg_backup_age_seconds",
      help: "Seconds since the cluster's last completed base backup (absent: none yet)",
      labelNames: ["cluster"],
      registers: [registry],
      collect() {
        this.reset();
        const now = Date.now();
        for (const c of clusters()) {
          const age = backupAgeSeconds(c, now);
          if (age !== undefined) this.set({ cluster: c.cluster }, age);
        }
      },
    });
  }

  /** Starts the WAL drain loop (it acts only while this instance holds the lease). */
  start(): void {
    this.timer = setInterval(() => void this.drainAll(), this.walIntervalMs);
  }

  /** Leadership changed: only the holder drains outboxes and ends backups left running by a dead manager. */
  setLeader(held: boolean): void {
    this.leader = held;
    if (held) void this.drainAll();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.leader = false;
  }

  private async endpoint(cluster: string, memberId: string): Promise<AgentEndpoint> {
    const place = this.ops.place(cluster, memberId);
    if (!place?.started)
      throw new CommandError(`member ${memberId} of cluster ${cluster} is not started`, "unavailable");
    return {
      address: place.control,
      port: this.ops.opts.agentPort,
      token: await this.ops.agentToken(cluster),
    };
  }

  /** One round: every started member's outbox of every ready cluster (after a failover, the old primary's too). */
  private async drainAll(): Promise<void> {
    if (!this.leader || this.draining) return;
    this.draining = true;
    try {
      for (const c of this.ops.allClusters()) {
        if (c.status !== "ready") continue;
        // Recording a backup as failed may not go through now (NATS away): the next round tries
        // again; it must not end the manager.
        await this.failAbandoned(c).catch((err: unknown) =>
          this.ops.opts.logger.warn(
            { err, cluster: c.cluster },
            "backups left running by an earlier manager not recorded failed yet",
          ),
        );
        for (const m of orderedMembers(c)) {
          if (!this.leader) return;
          const at = await this.endpoint(c.cluster, m.id).catch(() => undefined);
          if (!at) continue;
          await drainWal(at, this.store, c.cluster).catch((err: unknown) =>
            this.ops.opts.logger.warn(
              { cluster: c.cluster, member: m.id, err: String(err) },
              "WAL drain failed; next round tries again",
            ),
          );
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /** A backup still running that a manager which has since stopped started is recorded failed. */
  private async failAbandoned(c: PgCluster): Promise<void> {
    for (const b of c.backups) {
      if (b.status !== "running" || this.inFlight.has(b.backup_id) || b.started_at_ms >= this.startedAtMs)
        continue;
      await this.ops.record(
        c.cluster,
        {
          type: "FailBackup",
          backupId: b.backup_id,
          reason: "the manager taking it stopped before it was stored",
        },
        `backup-abandoned-${b.backup_id}`,
      );
    }
  }

  /** Takes a base backup of the primary now and answers it once stored (or failed, recorded). */
  async create(req: PgClusterRef): Promise<PgBackupView> {
    const c = this.existing(req?.cluster);
    if (c.status !== "ready" || c.failover)
      throw new DomainError(
        `cluster ${c.cluster} is ${c.failover ? "failing over" : c.status}; try again`,
        "failed_precondition",
      );
    const startedAtMs = Date.now();
    const backupId = newBackupId(startedAtMs);
    const primary = c.primary_id;
    const at = await this.endpoint(c.cluster, primary);
    await this.ops.record(
      c.cluster,
      { type: "StartBackup", backupId, memberId: primary, startedAtMs },
      `backup-start-${backupId}`,
    );
    this.inFlight.add(backupId);
    try {
      const facts = await takeBaseBackup(at, this.store, c.cluster, backupId);
      const done = await this.ops.record(
        c.cluster,
        {
          type: "CompleteBackup",
          backupId,
          startLsn: facts.start_lsn,
          timeline: facts.timeline,
          size: facts.size,
          storedSize: facts.stored_size,
          sha256: facts.sha256,
          finishedAtMs: Date.now(),
        },
        `backup-done-${backupId}`,
      );
      this.ops.opts.logger.info(
        { cluster: c.cluster, backup: backupId, size: facts.size },
        "base backup stored",
      );
      return backupView(done.backups.find((b) => b.backup_id === backupId) as PgBackup);
    } catch (err) {
      await this.ops.record(
        c.cluster,
        { type: "FailBackup", backupId, reason: String(err) },
        `backup-failed-${backupId}`,
      );
      throw err;
    } finally {
      this.inFlight.delete(backupId);
    }
  }

  /** The cluster's base backups, newest first (a destroyed cluster's too: its archive stays). */
  list(req: PgClusterRef): PgBackupList {
    const c = this.known(req?.cluster);
    return { backups: [...c.backups].reverse().map(backupView) };
  }

  /**
   * Records a new cluster `name` restored from `cluster`'s archive to `time` and drives its create;
   * answers `wait`'s view once it is ready. A live source's primary switches WAL and its outbox is
   * drained first, so the archive reaches past `time`.
   */
  async restore(
    req: PgRestoreRequest,
    wait: (cluster: string) => Promise<PgClusterView>,
  ): Promise<PgClusterView> {
    const source = this.known(req?.cluster);
    const timeProblem =
      req.time !== undefined &&
      (typeof req.time !== "string" ||
        Number.isNaN(Date.parse(req.time)) ||
        !/T.*(Z|[+-]\d\d:\d\d)$/.test(req.time));
    if (timeProblem)
      throw new DomainError(
        "time must be an RFC 3339 time with a zone, e.g. 2026-12-05T11:30:00Z",
        "invalid_argument",
      );
    const targetMs = req.time === undefined ? undefined : Date.parse(req.time);
    if (targetMs !== undefined && targetMs > Date.now())
      throw new DomainError(`time ${req.time} is in the future`, "invalid_argument");
    const backup = backupFor(source.backups, targetMs);
    if (!backup)
      throw new DomainError(
        `cluster ${source.cluster} has no completed base backup${req.time ? ` finished before ${req.time}` : ""}: take one with hangar postgres backup create`,
        "failed_precondition",
      );
    // pg_switch_wal on a primary with nothing new written is a no-op: asking again (a retried restore) is harmless.
    if (source.status === "ready") {
      const at = await this.endpoint(source.cluster, source.primary_id);
      await switchWal(at);
      await drainWal(at, this.store, source.cluster);
    }
    await recordCreate(
      this.ops,
      {
        command_id: req.command_id,
        name: req.name,
        org: source.org,
        region: source.region,
        vm_size: source.vm_size,
        volume_size_gb: source.volume_size_gb,
        initial_size: source.initial_size,
      },
      {
        from: source.cluster,
        backupId: backup.backup_id,
        targetTime: targetMs === undefined ? "" : new Date(targetMs).toISOString(),
      },
    );
    return wait(req.name);
  }

  private known(name: unknown): PgCluster {
    if (typeof name !== "string" || name === "")
      throw new DomainError("cluster must be a non-empty string", "invalid_argument");
    const c = this.ops.cluster(name);
    if (!c) throw new DomainError(`postgres cluster ${name} not found`, "not_found");
    return c;
  }

  private existing(name: unknown): PgCluster {
    const c = this.known(name);
    if (c.status === "destroyed")
      throw new DomainError(`postgres cluster ${c.cluster} not found`, "not_found");
    return c;
  }
}

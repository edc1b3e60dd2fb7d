import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { PgCluster, PgFailoverKind } from "@hangar/domain";
import { DomainError } from "@hangar/eventstore";
import { CommandError, type PgFailoverReply } from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import { type ClusterOps, orderedMembers } from "./cluster-ops.js";
import { driveCreate } from "./create.js";
import {
  caughtUp,
  chooseCandidate,
  fencedPrimaryAction,
  fenceWaitRemainingMs,
  isSlowPrimary,
  isWritablePrimary,
  needsRejoin,
  primaryLost,
  resumeChoice,
} from "./decisions.js";
import type { MemberStatus } from "./member-client.js";
import type { ClusterMetrics } from "./metrics.js";

/** A replica on an older timeline than the cluster's this long is told to replicate again. */
const STALE_TIMELINE_MS = 10_000;
/** How many loss times a primary whose agent answers that postgres is slow gets (decisions.ts primaryLost). */
const SLOW_PRIMARY_LOST_FACTOR = 5;
/** How long a switchover waits for a replica to replay everything the fenced primary wrote. */
const SWITCHOVER_CATCH_UP_MS = 30_000;

/** What the actor saw of one cluster's members, in its own clock. */
interface ClusterWatch {
  /** Last time the recorded primary answered as a writable primary (or the watch began). */
  lastWritableAtMs: number;
  /** Last time the recorded primary answered unfenced (or the watch began): the fencing wait counts from it. */
  lastUnfencedAtMs: number;
  /**
   * Last time another member said it reached the old primary's agent (its `peers_seen`): a primary
   * cut off from the manager alone still sees its majority and never fences, so the fencing wait
   * counts from this too.
   */
  lastSeenByPeersAtMs: number;
  /** Last time the primary's agent answered, unfenced, that its postgres did not answer it in time. */
  lastSlowAtMs: number;
  /** Since when each member has answered on a timeline older than the cluster's. */
  olderTimelineSince: Map<string, number>;
}

/**
 * The watcher and failover actor (docs/postgres.md "Failover"). Only while this instance holds the
 * lease does it act: every check it asks every member of every ready cluster for its status, fails
 * a lost primary over, unfences a restarted primary, rejoins members that come back, drives
 * unfinished creates and resumes failovers in flight. One task at a time per cluster.
 */
export class FailoverActor {
  private readonly watches = new Map<string, ClusterWatch>();
  private readonly tasks = new Map<string, Promise<unknown>>();
  private leader = false;
  private term = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private readonly log: Logger;

  constructor(
    private readonly ops: ClusterOps,
    private readonly metrics: ClusterMetrics,
  ) {
    this.log = ops.opts.logger.child({ part: "failover-actor" });
  }

  /** Starts checking (acting only while leader). */
  start(): void {
    this.timer = setInterval(() => void this.tick(), this.ops.opts.timings.checkMs);
  }

  /** Whether this instance acts now. */
  get isLeader(): boolean {
    return this.leader;
  }

  /**
   * Takes up (or gives up) the actor's work. A new term starts every watch afresh, so a manager that
   * just took over waits the whole loss time and fencing bound before it promotes anyone.
   */
  setLeader(held: boolean): void {
    if (held === this.leader) return;
    this.leader = held;
    this.term.abort();
    this.term = new AbortController();
    this.watches.clear();
    this.log.info({ leader: held }, held ? "took the failover lease" : "lost the failover lease");
    if (held) void this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.leader = false;
    this.term.abort();
    await Promise.allSettled([...this.tasks.values()]);
  }

  /** Drives the cluster's unfinished create now when this instance is leader (else the leader's check will). */
  kickCreate(cluster: string): void {
    if (this.leader) this.task(cluster, (signal) => driveCreate(this.ops, cluster, signal));
  }

  /** A planned switchover, run as the cluster's task; refused while another task runs for it. */
  async switchover(cluster: string): Promise<PgFailoverReply> {
    if (!this.leader)
      throw new CommandError(
        "this manager instance does not hold the failover lease; ask again",
        "unavailable",
      );
    if (this.tasks.has(cluster))
      throw new DomainError(
        `cluster ${cluster} is busy (a create, failover or rejoin); try again`,
        "failed_precondition",
      );
    return this.task(cluster, (signal) => this.runSwitchover(cluster, signal)) as Promise<PgFailoverReply>;
  }

  /** Runs `work` as the cluster's one task; a task already running is left alone (and returned). */
  private task<R>(cluster: string, work: (signal: AbortSignal) => Promise<R>): Promise<R> {
    const running = this.tasks.get(cluster);
    if (running) return running as Promise<R>;
    const signal = this.term.signal;
    const p = work(signal).finally(() => this.tasks.delete(cluster));
    this.tasks.set(cluster, p);
    p.catch((err: unknown) => this.log.error({ cluster, err: String(err) }, "cluster task failed"));
    return p;
  }

  private async tick(): Promise<void> {
    if (!this.leader || this.ticking) return;
    this.ticking = true;
    try {
      await Promise.all(
        this.ops
          .allClusters()
          .map((c) =>
            this.checkCluster(c).catch((err: unknown) =>
              this.log.warn({ cluster: c.cluster, err: String(err) }, "check failed"),
            ),
          ),
      );
    } finally {
      this.ticking = false;
    }
  }

  private watchOf(cluster: string): ClusterWatch {
    let w = this.watches.get(cluster);
    if (!w) {
      const now = Date.now();
      w = {
        lastWritableAtMs: now,
        lastUnfencedAtMs: now,
        lastSeenByPeersAtMs: 0,
        lastSlowAtMs: 0,
        olderTimelineSince: new Map(),
      };
      this.watches.set(cluster, w);
    }
    return w;
  }

  /** Notes what the old (or current) primary answered: the fencing wait counts from its last unfenced answer. */
  private seePrimary(w: ClusterWatch, status: MemberStatus | undefined, now: number): void {
    if (status && !status.fenced) w.lastUnfencedAtMs = now;
    if (isWritablePrimary(status)) w.lastWritableAtMs = now;
    if (isSlowPrimary(status)) w.lastSlowAtMs = now;
  }

  private async checkCluster(c: PgCluster): Promise<void> {
    if (this.tasks.has(c.cluster)) return;
    if (c.status === "creating") {
      this.task(c.cluster, (signal) => driveCreate(this.ops, c.cluster, signal));
      return;
    }
    if (c.status !== "ready") {
      this.watches.delete(c.cluster);
      return;
    }
    if (c.failover) {
      const failoverId = c.failover.id;
      this.task(c.cluster, (signal) => this.runFailover(c.cluster, failoverId, signal));
      return;
    }
    const statuses = await this.ops.statuses(c);
    const now = Date.now();
    for (const [id, s] of statuses) this.metrics.observe(c.cluster, id, s);
    const w = this.watchOf(c.cluster);
    const primary = statuses.get(c.primary_id);
    this.seePrimary(w, primary, now);
    // What the manager saw of the primary's fencing goes into the log (the monitor's role changes).
    const recordedFenced = c.members[c.primary_id]?.fenced === true;
    if (primary?.fenced && !recordedFenced)
      await this.ops.record(
        c.cluster,
        { type: "MarkFenced", memberId: c.primary_id, atMs: now },
        `fenced-${c.primary_id}-${now}`,
      );
    if (isWritablePrimary(primary) && recordedFenced)
      await this.ops.record(
        c.cluster,
        { type: "MarkUnfenced", memberId: c.primary_id, atMs: now },
        `unfenced-${c.primary_id}-${now}`,
      );
    const others = orderedMembers(c)
      .filter((m) => m.id !== c.primary_id)
      .map((m) => statuses.get(m.id));
    const fencedAction = fencedPrimaryAction(primary, others, Object.keys(c.members).length);
    if (fencedAction === "unfence") {
      // A primary that restarted fenced and still sees its majority, with nobody promoted since.
      w.lastWritableAtMs = now;
      this.task(c.cluster, () => this.unfence(c.cluster, c.primary_id));
      return;
    }
    if (fencedAction === "failover") {
      const reason =
        "the primary came back fenced (restarted or partitioned); a synchronous replica takes its place";
      this.task(c.cluster, (signal) => this.runFailover(c.cluster, undefined, signal, "failover", reason));
      return;
    }
    if (
      Object.keys(c.members).length > 1 &&
      primaryLost(
        w,
        now,
        this.ops.opts.timings.primaryLostMs,
        SLOW_PRIMARY_LOST_FACTOR * this.ops.opts.timings.primaryLostMs,
      )
    ) {
      const reason = !primary
        ? "the primary does not answer"
        : !primary.pg_up
          ? "the primary's postgres is down"
          : primary.fenced
            ? "the primary is fenced (it lost its majority)"
            : "the primary does not run as primary";
      this.task(c.cluster, (signal) => this.runFailover(c.cluster, undefined, signal, "failover", reason));
      return;
    }
    if (!isWritablePrimary(primary)) return;
    for (const m of orderedMembers(c)) {
      if (m.id === c.primary_id) continue;
      const s = statuses.get(m.id);
      if (s && s.timeline !== null && s.timeline < c.timeline) {
        if (!w.olderTimelineSince.has(m.id)) w.olderTimelineSince.set(m.id, now);
      } else w.olderTimelineSince.delete(m.id);
      if (needsRejoin(m, s, c.timeline, w.olderTimelineSince.get(m.id), now, STALE_TIMELINE_MS)) {
        this.task(c.cluster, () =>
          this.rejoin(c.cluster, m.id, s?.state === "empty" ? "basebackup" : "rewind"),
        );
        return;
      }
    }
  }

  private async unfence(cluster: string, memberId: string): Promise<void> {
    await this.ops.onMember(cluster, memberId, (m, at, token) => m.unfence(at, token));
    await this.ops.record(
      cluster,
      { type: "MarkUnfenced", memberId, atMs: Date.now() },
      `unfenced-${memberId}-${Date.now()}`,
    );
    this.log.info({ cluster, member: memberId }, "primary unfenced");
  }

  /** Tells a member that came back to replicate from the primary (pg_rewind or a base backup), and records it. */
  private async rejoin(cluster: string, memberId: string, method: "rewind" | "basebackup"): Promise<void> {
    const c = this.ops.cluster(cluster);
    if (!c) return;
    const [primary] = this.ops.addresses(c, [c.primary_id]);
    if (!primary) return;
    this.log.info({ cluster, member: memberId, primary: primary.id }, "member rejoins as replica");
    await this.ops.onMember(cluster, memberId, (m, at, token) =>
      m.configure(at, token, this.ops.addresses(c)),
    );
    const s = await this.ops.onMember(cluster, memberId, (m, at, token) => m.replicate(at, token, primary));
    await this.ops.record(
      cluster,
      { type: "MarkRejoined", memberId, primaryId: primary.id, method: s.rejoined_with ?? method },
      `rejoined-${memberId}-${c.timeline}-${Date.now()}`,
    );
    this.watches.get(cluster)?.olderTimelineSince.delete(memberId);
  }

  /**
   * A failover from its current step: started (unless `failoverId` is the one in flight), the
   * fencing wait, the candidate chosen, promoted, the others repointed, completed. Resumed by a
   * manager that finds it in flight: a member already promoted is recorded, else it chooses again.
   */
  private async runFailover(
    cluster: string,
    failoverId: string | undefined,
    signal: AbortSignal,
    kind: PgFailoverKind = "failover",
    reason = "",
  ): Promise<void> {
    let c = this.live(cluster);
    let id = failoverId;
    if (!id) {
      id = `fo_${randomBytes(8).toString("hex")}`;
      c = await this.ops.record(
        cluster,
        { type: "StartFailover", failoverId: id, kind, reason, startedAtMs: Date.now() },
        `start-${id}`,
      );
      this.log.warn({ cluster, failover: id, old_primary: c.primary_id, reason }, "failover started");
    }
    const w = this.watchOf(cluster);
    let waitingFor = "";
    while (!c.failover?.promoted) {
      if (signal.aborted) return;
      const f = c.failover;
      if (!f || f.id !== id) return;
      const statuses = await this.ops.statuses(c);
      const now = Date.now();
      this.seePrimary(w, statuses.get(f.old_primary_id), now);
      const members = orderedMembers(c).map((m) => ({ id: m.id, status: statuses.get(m.id) }));
      if (members.some((m) => m.id !== f.old_primary_id && m.status?.peers_seen.includes(f.old_primary_id)))
        w.lastSeenByPeersAtMs = now;
      const seenAtMs = Math.max(w.lastUnfencedAtMs, w.lastSeenByPeersAtMs);
      const resumed = resumeChoice(f.old_primary_id, c.timeline, members);
      if ("promoted" in resumed) {
        const s = statuses.get(resumed.promoted.memberId);
        c = await this.ops.record(
          cluster,
          {
            type: "ChooseCandidate",
            failoverId: id,
            memberId: resumed.promoted.memberId,
            lsn: s?.lsn.current ?? "",
            lsnBytes: s?.lsn_bytes.current ?? 0,
          },
          `choose-${id}-${resumed.promoted.memberId}`,
        );
        c = await this.ops.record(
          cluster,
          {
            type: "PromoteMember",
            failoverId: id,
            memberId: resumed.promoted.memberId,
            timeline: resumed.promoted.timeline,
          },
          `promote-${id}`,
        );
        break;
      }
      if (f.kind === "failover" && isWritablePrimary(statuses.get(f.old_primary_id))) {
        await this.ops.record(
          cluster,
          {
            type: "AbandonFailover",
            failoverId: id,
            reason: "the primary answers as a writable primary again",
          },
          `abandon-${id}`,
        );
        this.log.info({ cluster, failover: id }, "failover abandoned: the primary is back");
        return;
      }
      // An old primary that answers but cannot serve (postgres down, not primary) is fenced now, so it
      // takes no write if its postgres comes back; one that says it is fenced needs no wait.
      let fencedNow = statuses.get(f.old_primary_id)?.fenced === true;
      if (!fencedNow && statuses.get(f.old_primary_id)) {
        const fenced = await this.ops
          .onMember(cluster, f.old_primary_id, (m, at, token) => m.fence(at, token))
          .catch(() => undefined);
        fencedNow = fenced?.fenced === true;
      }
      const wait = fencedNow ? 0 : fenceWaitRemainingMs(seenAtMs, now, this.ops.opts.timings.fenceWaitMs);
      if (wait > 0) {
        await sleep(Math.min(wait, this.ops.opts.timings.checkMs));
        c = this.live(cluster);
        continue;
      }
      // Chosen by WAL positions postgres gives now: the quick status may carry an answer up to 2 s old
      // (a slow postgres), older than the last commits a replica received.
      const replicas = await Promise.all(
        members
          .filter((m) => m.id !== f.old_primary_id)
          .map(async (m) => ({
            id: m.id,
            status: await this.ops
              .onMember(cluster, m.id, (client, at, token) => client.freshStatus(at, token))
              .catch(() => undefined),
          })),
      );
      const choice = chooseCandidate(replicas, Object.keys(c.members).length >= 3, f.candidate_id);
      if ("wait" in choice) {
        if (choice.wait !== waitingFor)
          this.log.warn({ cluster, failover: id, why: choice.wait }, "failover waits");
        waitingFor = choice.wait;
        await sleep(this.ops.opts.timings.checkMs);
        c = this.live(cluster);
        continue;
      }
      const candidate = choice.candidate;
      c = await this.ops.record(
        cluster,
        { type: "ChooseCandidate", failoverId: id, ...candidate },
        `choose-${id}-${candidate.memberId}`,
      );
      // The old primary may have answered unfenced while the others were asked: wait again then.
      if (!fencedNow && fenceWaitRemainingMs(seenAtMs, Date.now(), this.ops.opts.timings.fenceWaitMs) > 0)
        continue;
      if (signal.aborted) return;
      const promoted = await this.ops.onMember(cluster, candidate.memberId, (m, at, token) =>
        m.promote(at, token),
      );
      c = await this.ops.record(
        cluster,
        {
          type: "PromoteMember",
          failoverId: id,
          memberId: candidate.memberId,
          timeline: promoted.timeline ?? c.timeline + 1,
        },
        `promote-${id}`,
      );
      this.log.warn(
        { cluster, failover: id, member: candidate.memberId, lsn: candidate.lsn },
        "replica promoted",
      );
    }
    await this.repointAndComplete(cluster, id);
  }

  /** After a promote: the new primary learns the members, every other replica follows it, the failover completes. */
  private async repointAndComplete(cluster: string, failoverId: string): Promise<PgCluster> {
    let c = this.live(cluster);
    const f = c.failover;
    if (!f || f.id !== failoverId || !f.candidate_id) return c;
    const newPrimary = f.candidate_id;
    const all = this.ops.addresses(c);
    const primary = all.find((a) => a.id === newPrimary);
    if (!primary) throw new CommandError(`new primary ${newPrimary} has no address`, "unavailable");
    await this.ops.onMember(cluster, newPrimary, (m, at, token) => m.configure(at, token, all));
    for (const m of orderedMembers(c)) {
      if (m.id === newPrimary || m.id === f.old_primary_id || f.repointed.includes(m.id)) continue;
      try {
        await this.ops.onMember(cluster, m.id, (client, at, token) => client.configure(at, token, all));
        await this.ops.onMember(cluster, m.id, (client, at, token) => client.follow(at, token, primary));
        c = await this.ops.record(
          cluster,
          { type: "RepointMember", failoverId, memberId: m.id },
          `repoint-${failoverId}-${m.id}`,
        );
      } catch (err) {
        // It rejoins once it answers again (the actor's check sees it on an old timeline).
        this.log.warn({ cluster, member: m.id, err: String(err) }, "replica not repointed");
      }
    }
    c = await this.ops.record(
      cluster,
      { type: "CompleteFailover", failoverId, completedAtMs: Date.now() },
      `complete-${failoverId}`,
    );
    this.metrics.failoverCompleted(cluster, f.kind);
    this.watches.delete(cluster);
    this.log.warn(
      { cluster, failover: failoverId, primary: newPrimary, timeline: c.timeline },
      "failover completed",
    );
    return c;
  }

  /**
   * A planned switchover: the primary fenced (no commit after this), a replica that replayed all it
   * wrote promoted, the others repointed, the old primary replicating from the new one.
   */
  private async runSwitchover(cluster: string, signal: AbortSignal): Promise<PgFailoverReply> {
    const started = Date.now();
    let c = this.live(cluster);
    if (c.status !== "ready")
      throw new DomainError(`cluster ${cluster} is ${c.status}`, "failed_precondition");
    const id = `so_${randomBytes(8).toString("hex")}`;
    const old = c.primary_id;
    c = await this.ops.record(
      cluster,
      { type: "StartFailover", failoverId: id, kind: "switchover", reason: "asked", startedAtMs: started },
      `start-${id}`,
    );
    const abandon = async (why: string, code: "failed_precondition" | "unavailable") => {
      await this.ops.onMember(cluster, old, (m, at, token) => m.unfence(at, token)).catch(() => undefined);
      await this.ops.record(
        cluster,
        { type: "AbandonFailover", failoverId: id, reason: why },
        `abandon-${id}`,
      );
      return new CommandError(`switchover of ${cluster} abandoned: ${why}`, code);
    };
    try {
      await this.ops.onMember(cluster, old, (m, at, token) => m.fence(at, token));
    } catch (err) {
      throw await abandon(`the primary could not be fenced: ${String(err)}`, "unavailable");
    }
    let chosen: { id: string; status: MemberStatus } | undefined;
    const deadline = Date.now() + SWITCHOVER_CATCH_UP_MS;
    while (!chosen) {
      if (signal.aborted || Date.now() > deadline)
        throw await abandon(
          "no replica replayed everything the primary wrote in time",
          "failed_precondition",
        );
      const statuses = await this.ops.statuses(c);
      const ps = statuses.get(old);
      for (const m of orderedMembers(c)) {
        const s = statuses.get(m.id);
        if (m.id === old || !ps || !s?.pg_up || s.role !== "replica") continue;
        if (caughtUp(ps, s)) {
          chosen = { id: m.id, status: s };
          break;
        }
      }
      if (!chosen) await sleep(100);
    }
    await this.ops.record(
      cluster,
      {
        type: "ChooseCandidate",
        failoverId: id,
        memberId: chosen.id,
        lsn: chosen.status.lsn.replay ?? "",
        lsnBytes: chosen.status.lsn_bytes.replay ?? 0,
      },
      `choose-${id}-${chosen.id}`,
    );
    const promoted = await this.ops.onMember(cluster, chosen.id, (m, at, token) => m.promote(at, token));
    c = await this.ops.record(
      cluster,
      {
        type: "PromoteMember",
        failoverId: id,
        memberId: chosen.id,
        timeline: promoted.timeline ?? c.timeline + 1,
      },
      `promote-${id}`,
    );
    c = await this.repointAndComplete(cluster, id);
    await this.rejoin(cluster, old, "rewind").catch((err: unknown) =>
      this.log.warn(
        { cluster, member: old, err: String(err) },
        "old primary did not rejoin yet; the check tries again",
      ),
    );
    return {
      old_primary_id: old,
      new_primary_id: chosen.id,
      timeline: c.timeline,
      duration_ms: Date.now() - started,
    };
  }

  private live(cluster: string): PgCluster {
    const c = this.ops.cluster(cluster);
    if (!c || c.status === "destroyed")
      throw new DomainError(`postgres cluster ${cluster} not found`, "not_found");
    return c;
  }
}

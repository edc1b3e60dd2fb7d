// The failover actor's decisions, pure (no I/O, no clock): what the member statuses it collected
// and the times it saw them mean. docs/postgres.md ("Failover") says why each rule is safe.
import type { MemberStatus } from "./member-client.js";

/** A primary the clients can write to: it answers as primary, postgres up, not fenced. */
export function isWritablePrimary(status: MemberStatus | undefined): boolean {
  return status !== undefined && status.role === "primary" && status.pg_up && !status.fenced;
}

/**
 * Whether the recorded primary is lost: it has not answered as a writable primary for `lostAfterMs`
 * (the watcher counts from when it started watching, so a manager that just took over waits the
 * whole time too). An agent that keeps answering, unfenced, that its postgres is not up gets
 * `slowLostAfterMs`: the agent gives postgres ~300 ms per status, which a starved host (CPU
 * contention) misses while postgres is fine; a postgres that really died is restarted by its agent
 * or is fenced by the failover at once.
 */
export function primaryLost(
  seen: { lastWritableAtMs: number; lastSlowAtMs: number },
  nowMs: number,
  lostAfterMs: number,
  slowLostAfterMs: number,
): boolean {
  const sinceWritable = nowMs - seen.lastWritableAtMs;
  if (sinceWritable < lostAfterMs) return false;
  if (nowMs - seen.lastSlowAtMs < lostAfterMs) return sinceWritable >= slowLostAfterMs;
  return true;
}

/** An answer of the primary's agent that says only that its postgres did not answer it in time. */
export function isSlowPrimary(status: MemberStatus | undefined): boolean {
  return status !== undefined && !status.fenced && !status.pg_up;
}

/**
 * How long a failover must still wait before it may promote: until `fenceWaitMs` has passed since
 * the manager last saw the old primary answer unfenced. By then a primary that lost its majority has
 * fenced itself (HANGAR_PG_FENCE_AFTER_MS plus one check after it last saw the majority), so it
 * acknowledges nothing beside the new one. 0: promote now.
 */
export function fenceWaitRemainingMs(
  lastSeenUnfencedAtMs: number,
  nowMs: number,
  fenceWaitMs: number,
): number {
  return Math.max(0, lastSeenUnfencedAtMs + fenceWaitMs - nowMs);
}

/** A restarted primary that may take writes again: still the recorded primary, fenced, seeing a majority. */
export function shouldUnfence(status: MemberStatus | undefined): boolean {
  return (
    status !== undefined && status.role === "primary" && status.pg_up && status.fenced && status.majority
  );
}

/**
 * What to do with a fenced primary that is up and sees its majority again (its machine restarted, or
 * a partition healed): with synchronous replication (3 or more members) and a replica streaming,
 * unfenced and up, that replica takes its place ("failover": every acknowledged commit is on a
 * synchronous replica, so nothing acknowledged is lost, and the cluster does not wait on a primary
 * that just crashed); otherwise it takes writes again ("unfence": with 1 or 2 members, replication is
 * asynchronous and only the old primary surely holds every acknowledged commit). Undefined: neither.
 */
export function fencedPrimaryAction(
  primary: MemberStatus | undefined,
  others: readonly (MemberStatus | undefined)[],
  memberCount: number,
): "unfence" | "failover" | undefined {
  if (!shouldUnfence(primary)) return undefined;
  // Every other member must answer as a replica: the failover then chooses among all of them (an
  // acknowledged commit may be on any one), so it cannot stall beside a primary that holds everything.
  const allStandBy = others.every((s) => s?.role === "replica" && s.pg_up && !s.fenced);
  return memberCount >= 3 && others.length > 0 && allStandBy ? "failover" : "unfence";
}

/** A status with postgres up, so its WAL position counts. */
function answeredNow(status: MemberStatus | undefined): status is MemberStatus {
  return status?.pg_up === true;
}

/** The replica to promote, with the WAL position it was chosen at. */
export interface Candidate {
  memberId: string;
  lsn: string;
  lsnBytes: number;
}

/** A failover's choice: a candidate, or why it must wait (asked again on the next check). */
export type CandidateChoice = { candidate: Candidate } | { wait: string };

/** The furthest WAL a replica holds: flushed (received) when known, else replayed. */
function heldLsn(status: MemberStatus): { lsn: string; bytes: number } | undefined {
  const options = [
    { lsn: status.lsn.receive, bytes: status.lsn_bytes.receive },
    { lsn: status.lsn.replay, bytes: status.lsn_bytes.replay },
  ];
  let best: { lsn: string; bytes: number } | undefined;
  for (const o of options) {
    if (o.lsn === null || o.bytes === null) continue;
    if (!best || o.bytes > best.bytes) best = { lsn: o.lsn, bytes: o.bytes };
  }
  return best;
}

/**
 * Chooses the replica to promote among `replicas` (every member but the old primary, in member
 * order, with its status or undefined when it did not answer). With synchronous replication
 * (`requireAll`: ANY 1 of them) an acknowledged commit may be on any one replica, so every replica
 * must answer with postgres up; then the one holding the most WAL has every commit any of them has
 * (WAL is one ordered history). Ties go to the first in member order, so the choice is stable.
 */
export function chooseCandidate(
  replicas: ReadonlyArray<{ id: string; status: MemberStatus | undefined }>,
  requireAll: boolean,
  /**
   * The candidate a failover recorded already (a resumed one): chosen again when it answers, so a
   * promote the previous manager may still have in flight is never followed by another member's.
   */
  recorded?: string,
): CandidateChoice {
  const again = replicas.find((r) => r.id === recorded);
  const againHeld = answeredNow(again?.status) ? heldLsn(again.status) : undefined;
  if (again && againHeld)
    return { candidate: { memberId: again.id, lsn: againHeld.lsn, lsnBytes: againHeld.bytes } };
  let best: Candidate | undefined;
  const silent: string[] = [];
  for (const { id, status } of replicas) {
    // An older answer standing in for a slow postgres may predate the last commits it received.
    const held = answeredNow(status) ? heldLsn(status) : undefined;
    if (!held) {
      silent.push(id);
      continue;
    }
    if (!best || held.bytes > best.lsnBytes) best = { memberId: id, lsn: held.lsn, lsnBytes: held.bytes };
  }
  if (requireAll && silent.length > 0)
    return {
      wait: `replicas ${silent.join(", ")} do not answer with their WAL position; an acknowledged commit may be only there`,
    };
  if (!best) return { wait: "no replica answers with its WAL position" };
  return { candidate: best };
}

/**
 * What a manager that finds a failover in flight does: a member other than the old primary already
 * primary, unfenced, on a newer timeline than the cluster's was promoted (the previous manager died
 * after the promote): record it; otherwise choose (again).
 */
export function resumeChoice(
  oldPrimaryId: string,
  recordedTimeline: number,
  members: ReadonlyArray<{ id: string; status: MemberStatus | undefined }>,
): { promoted: { memberId: string; timeline: number } } | { choose: true } {
  let promoted: { memberId: string; timeline: number } | undefined;
  for (const { id, status } of members) {
    if (id === oldPrimaryId || !status || status.role !== "primary" || status.fenced) continue;
    const timeline = status.timeline ?? 0;
    if (timeline > recordedTimeline && (!promoted || timeline > promoted.timeline))
      promoted = { memberId: id, timeline };
  }
  return promoted ? { promoted } : { choose: true };
}

/**
 * Whether a member (not the recorded primary) must be told to replicate from the primary again: it
 * was the old primary or missed a repoint (not ready), it runs as a primary, or it stayed on an
 * older timeline than the cluster's for `staleForMs` (a follow takes a moment to switch timelines).
 */
export function needsRejoin(
  member: { ready: boolean },
  status: MemberStatus | undefined,
  clusterTimeline: number,
  olderTimelineSinceMs: number | undefined,
  nowMs: number,
  staleForMs: number,
): boolean {
  if (!status || status.state === "starting") return false;
  if (!member.ready || status.role === "primary") return true;
  return (
    olderTimelineSinceMs !== undefined &&
    (status.timeline ?? 0) < clusterTimeline &&
    nowMs - olderTimelineSinceMs >= staleForMs
  );
}

/** Whether a replica has replayed everything the fenced primary wrote: a switchover's candidate is ready. */
export function caughtUp(primary: MemberStatus, replica: MemberStatus): boolean {
  const current = primary.lsn_bytes.current;
  return current !== null && replica.lsn_bytes.replay !== null && replica.lsn_bytes.replay >= current;
}

import type { PgCluster } from "@hangar/domain";
import type { PgClusterView, PgMemberView } from "@hangar/service";
import { orderedMembers } from "./cluster-ops.js";
import type { MemberStatus } from "./member-client.js";

/** What the manager knows of a member's machine: its region (the cluster's until it is placed). */
export type RegionOf = (memberId: string) => string | undefined;

/**
 * A cluster as the commands answer it: the recorded cluster, with each member's live figures when
 * `statuses` has them (list answers without asking the members).
 */
export function clusterView(
  c: PgCluster,
  regionOf: RegionOf,
  statuses?: ReadonlyMap<string, MemberStatus | undefined>,
): PgClusterView {
  const primaryStatus = statuses?.get(c.primary_id);
  const lagOf = new Map(primaryStatus?.replication.map((r) => [r.member_id, r.replay_lag_ms]) ?? []);
  const members = orderedMembers(c).map((m): PgMemberView => {
    const s = statuses?.get(m.id);
    const role = m.role;
    return {
      id: m.id,
      region: regionOf(m.id) ?? c.region,
      host_id: m.host_id,
      volume_id: m.volume_id,
      role,
      state: s ? s.state : statuses ? "unreachable" : "unknown",
      fenced: s ? s.fenced : m.fenced,
      timeline: s?.timeline ?? null,
      lsn: s ? (s.role === "primary" ? s.lsn.current : s.lsn.replay) : null,
      replay_lag_ms: role === "replica" ? (lagOf.get(m.id) ?? null) : null,
      healthy: s?.pg_up === true && !s.fenced && s.role === role && m.ready,
    };
  });
  return {
    name: c.cluster,
    org: c.org,
    region: c.region,
    vm_size: c.vm_size,
    volume_size_gb: c.volume_size_gb,
    status: c.status,
    primary_id: c.primary_id || null,
    timeline: c.timeline || null,
    members,
    attachments: c.attachments.map((a) => ({ ...a })),
    created_at: c.created_at,
  };
}

import type { PgAttachment, PgCluster, PgRole } from "@hangar/domain";
import type { PgClusterView, PgMemberView } from "@hangar/service";
import { orderedMembers } from "./cluster-ops.js";
import type { MemberStatus } from "./member-client.js";

/** What a view shows of a cluster, from the manager's fold (factsOf) or the read model's row. */
export interface ClusterFacts {
  name: string;
  org: string;
  region: string;
  vm_size: string;
  volume_size_gb: number;
  status: string;
  primary_id: string;
  timeline: number;
  created_at: string;
  /** In member order. */
  members: Array<{
    id: string;
    volume_id: string;
    host_id: string;
    role: PgRole | null;
    ready: boolean;
    fenced: boolean;
  }>;
  attachments: PgAttachment[];
}

/** The facts of a cluster as the manager folded it. */
export function factsOf(c: PgCluster): ClusterFacts {
  return { ...c, name: c.cluster, members: orderedMembers(c) };
}

/** What the manager knows of a member's machine: its region (the cluster's until it is placed). */
export type RegionOf = (memberId: string) => string | undefined;

/**
 * A cluster as the commands answer it: the recorded cluster, with each member's live figures when
 * `statuses` has them (list answers without asking the members).
 */
export function clusterView(
  c: ClusterFacts,
  regionOf: RegionOf,
  statuses?: ReadonlyMap<string, MemberStatus | undefined>,
): PgClusterView {
  const primaryStatus = statuses?.get(c.primary_id);
  const lagOf = new Map(primaryStatus?.replication.map((r) => [r.member_id, r.replay_lag_ms]) ?? []);
  const members = c.members.map((m): PgMemberView => {
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
    name: c.name,
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

import type { PgAttachment, PgClusterStatus, PgFailoverKind, PgRole } from "@hangar/domain";
import type { Kysely, Selectable } from "kysely";
import type { Database, PgClustersTable } from "./schema.js";

/** A member as the read model has it. */
export interface PgMemberRecord {
  id: string;
  index: number;
  volume_id: string;
  host_id: string;
  role: PgRole | null;
  ready: boolean;
  fenced: boolean;
}

/** A cluster as the read model has it: what `list` and `status` show, before live member status. */
export interface PgClusterRecord {
  name: string;
  org: string;
  region: string;
  vm_size: string;
  cpus: number;
  memory_mb: number;
  volume_size_gb: number;
  initial_size: number;
  image: string;
  status: PgClusterStatus;
  primary_id: string;
  timeline: number;
  /** The change of primary in flight, if any. */
  failover: {
    id: string;
    kind: PgFailoverKind;
    old_primary_id: string;
    candidate_id: string | null;
    started_at: string;
  } | null;
  error: string | null;
  /** RFC 3339. */
  created_at: string;
  updated_at: string;
  /** The PGCLUSTERS sequence of its last event: a caller that appended up to it reads its own write. */
  last_seq: number;
  members: PgMemberRecord[];
  attachments: PgAttachment[];
}

/** Clusters not destroyed, of `org` when given, by name. */
export async function listClusters(
  db: Kysely<Database>,
  opts: { org?: string } = {},
): Promise<PgClusterRecord[]> {
  let q = db.selectFrom("pg_clusters").selectAll().where("status", "!=", "destroyed");
  if (opts.org !== undefined) q = q.where("org", "=", opts.org);
  const rows = await q.orderBy("name").execute();
  return withParts(db, rows);
}

/** One cluster by name (a destroyed one too: its status says so), or undefined when there is none. */
export async function clusterRow(db: Kysely<Database>, name: string): Promise<PgClusterRecord | undefined> {
  const row = await db.selectFrom("pg_clusters").selectAll().where("name", "=", name).executeTakeFirst();
  if (row === undefined) return undefined;
  return (await withParts(db, [row]))[0];
}

async function withParts(
  db: Kysely<Database>,
  rows: Selectable<PgClustersTable>[],
): Promise<PgClusterRecord[]> {
  if (rows.length === 0) return [];
  const names = rows.map((r) => r.name);
  const [members, attachments] = await Promise.all([
    db.selectFrom("pg_members").selectAll().where("cluster", "in", names).orderBy("index").execute(),
    db
      .selectFrom("pg_attachments")
      .selectAll()
      .where("cluster", "in", names)
      .orderBy(["app", "variable"])
      .execute(),
  ]);
  return rows.map((r) => ({
    name: r.name,
    org: r.org,
    region: r.region,
    vm_size: r.vm_size,
    cpus: r.cpus,
    memory_mb: r.memory_mb,
    volume_size_gb: r.volume_size_gb,
    initial_size: r.initial_size,
    image: r.image,
    status: r.status,
    primary_id: r.primary_id,
    timeline: r.timeline,
    failover:
      r.failover_id === null
        ? null
        : {
            id: r.failover_id,
            kind: r.failover_kind === "switchover" ? "switchover" : "failover",
            old_primary_id: r.failover_old_primary_id ?? "",
            candidate_id: r.failover_candidate_id,
            started_at: (r.failover_started_at ?? r.updated_at).toISOString(),
          },
    error: r.error,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    last_seq: Number(r.last_seq),
    members: members
      .filter((m) => m.cluster === r.name)
      .map((m) => ({
        id: m.id,
        index: m.index,
        volume_id: m.volume_id,
        host_id: m.host_id,
        role: m.role,
        ready: m.ready,
        fenced: m.fenced,
      })),
    attachments: attachments
      .filter((a) => a.cluster === r.name)
      .map((a) => ({ app: a.app, database: a.database, user: a.db_user, variable: a.variable })),
  }));
}

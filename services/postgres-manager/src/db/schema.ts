import type { PgCluster } from "@hangar/domain";
import type { ColumnType } from "kysely";

// The read model's tables (migrations/0001_init.ts makes them), as kysely sees them. Times are
// timestamptz: read as Date, written as Date or RFC 3339 text.
type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** One row per cluster: its settings, status and primary, and the folded aggregate the next event evolves. */
export interface PgClustersTable {
  name: string;
  org: string;
  region: string;
  vm_size: string;
  cpus: number;
  memory_mb: number;
  volume_size_gb: number;
  initial_size: number;
  image: string;
  status: PgCluster["status"];
  primary_id: string;
  timeline: number;
  failover_id: string | null;
  failover_kind: string | null;
  failover_old_primary_id: string | null;
  failover_candidate_id: string | null;
  failover_started_at: Timestamp | null;
  error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** The PGCLUSTERS sequence of the last event applied to this cluster (int8: read as text). */
  last_seq: ColumnType<string, number, number>;
  /** The decider's state after that event (jsonb), so the projection folds exactly as the decider. */
  state: ColumnType<PgCluster, string, string>;
}

/** One row per member of a cluster. */
export interface PgMembersTable {
  cluster: string;
  id: string;
  index: number;
  volume_id: string;
  host_id: string;
  role: "primary" | "replica" | null;
  ready: boolean;
  fenced: boolean;
}

/** One row per attached (app, variable). */
export interface PgAttachmentsTable {
  cluster: string;
  app: string;
  variable: string;
  database: string;
  db_user: string;
}

/** The postgres manager's read model. */
export interface Database {
  pg_clusters: PgClustersTable;
  pg_members: PgMembersTable;
  pg_attachments: PgAttachmentsTable;
}

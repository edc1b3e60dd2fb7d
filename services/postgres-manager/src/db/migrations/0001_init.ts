import { type Kysely, sql } from "kysely";

/** The read model's first tables: clusters, their members and their attachments. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("pg_clusters")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("org", "text", (c) => c.notNull())
    .addColumn("region", "text", (c) => c.notNull())
    .addColumn("vm_size", "text", (c) => c.notNull())
    .addColumn("cpus", "integer", (c) => c.notNull())
    .addColumn("memory_mb", "integer", (c) => c.notNull())
    .addColumn("volume_size_gb", "integer", (c) => c.notNull())
    .addColumn("initial_size", "integer", (c) => c.notNull())
    .addColumn("image", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("primary_id", "text", (c) => c.notNull())
    .addColumn("timeline", "integer", (c) => c.notNull())
    .addColumn("failover_id", "text")
    .addColumn("failover_kind", "text")
    .addColumn("failover_old_primary_id", "text")
    .addColumn("failover_candidate_id", "text")
    .addColumn("failover_started_at", "timestamptz")
    .addColumn("error", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("last_seq", "bigint", (c) => c.notNull())
    .addColumn("state", "jsonb", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("pg_clusters_org").on("pg_clusters").columns(["org", "name"]).execute();
  await db.schema
    .createTable("pg_members")
    .addColumn("cluster", "text", (c) => c.notNull().references("pg_clusters.name").onDelete("cascade"))
    .addColumn("id", "text", (c) => c.notNull())
    .addColumn("index", "integer", (c) => c.notNull())
    .addColumn("volume_id", "text", (c) => c.notNull())
    .addColumn("host_id", "text", (c) => c.notNull())
    .addColumn("role", "text")
    .addColumn("ready", "boolean", (c) => c.notNull())
    .addColumn("fenced", "boolean", (c) => c.notNull())
    .addPrimaryKeyConstraint("pg_members_pk", ["cluster", "id"])
    .addCheckConstraint("pg_members_role", sql`role in ('primary', 'replica')`)
    .execute();
  await db.schema
    .createTable("pg_attachments")
    .addColumn("cluster", "text", (c) => c.notNull().references("pg_clusters.name").onDelete("cascade"))
    .addColumn("app", "text", (c) => c.notNull())
    .addColumn("variable", "text", (c) => c.notNull())
    .addColumn("database", "text", (c) => c.notNull())
    .addColumn("db_user", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("pg_attachments_pk", ["cluster", "app", "variable"])
    .execute();
}

/** Drops them (a migration back to nothing). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("pg_attachments").execute();
  await db.schema.dropTable("pg_members").execute();
  await db.schema.dropTable("pg_clusters").execute();
}

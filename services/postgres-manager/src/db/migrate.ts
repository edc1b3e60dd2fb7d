import type { Kysely } from "kysely";
import { type Migration, Migrator } from "kysely/migration";
import * as m0001 from "./migrations/0001_init.js";

/**
 * The read model's migrations by name, applied in name order. Listed in code rather than read from
 * a folder so that they run the same from TypeScript sources and from dist/. Never edit one that
 * shipped: add the next (0002_...).
 */
export const MIGRATIONS: Readonly<Record<string, Migration>> = { "0001_init": m0001 };

// Tables of their own: the platform's Postgres is shared by services, each with its own migrations.
const MIGRATION_TABLE = "postgres_manager_migration";
const MIGRATION_LOCK_TABLE = "postgres_manager_migration_lock";

/** Kysely's Migrator over MIGRATIONS (its lock makes concurrent managers take turns). */
export function readModelMigrator<DB>(db: Kysely<DB>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...MIGRATIONS }) },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
}

/** Applies every migration not applied yet; throws naming the migration that failed. */
export async function migrateToLatest<DB>(db: Kysely<DB>): Promise<string[]> {
  const { error, results = [] } = await readModelMigrator(db).migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((r) => r.status === "Error")?.migrationName;
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      failed
        ? `postgres-manager read model: migration ${failed} failed: ${why}`
        : `postgres-manager read model: migrations could not run: ${why}`,
      { cause: error },
    );
  }
  return results.filter((r) => r.status === "Success").map((r) => r.migrationName);
}

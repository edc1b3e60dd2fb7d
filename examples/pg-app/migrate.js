// pg-app's migration, for fly.toml's `[deploy] release_command = "node migrate.js"`: the platform runs
// it once per release, with the app's secrets (DATABASE_URL), before any machine is replaced. It makes
// the schema_migrations table and records this run in it; a non-zero exit fails the deploy.
import pg from "pg";

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error("migrate: no DATABASE_URL: run `hangar postgres attach <db> -a <app>` first");
  process.exit(1);
}
const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
try {
  await client.connect();
  await client.query(
    "CREATE TABLE IF NOT EXISTS schema_migrations (id bigserial PRIMARY KEY, machine_id text NOT NULL, ran_at timestamptz NOT NULL DEFAULT now())",
  );
  const { rows } = await client.query("INSERT INTO schema_migrations (machine_id) VALUES ($1) RETURNING id", [
    process.env.FLY_MACHINE_ID ?? "local",
  ]);
  console.log(`migrate: ran migration ${rows[0].id}`);
} catch (err) {
  console.error(`migrate: ${err.message}`);
  process.exitCode = 1;
} finally {
  await client.end().catch(() => {});
}

import { Client, escapeIdentifier } from "pg";

/** Creates database `name` on the server behind `adminUrl` (dropping it first if asked) and returns its URL. */
export async function createDatabase(adminUrl: string, name: string, replace = false): Promise<string> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    // FORCE ends sessions a previous run left open, which would otherwise block the drop.
    if (replace) await client.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

/** Creates a fresh database (dropping any old one) for one test file and returns its URL. */
export function testDatabase(postgresUrl: string, name: string): Promise<string> {
  return createDatabase(postgresUrl, name, true);
}

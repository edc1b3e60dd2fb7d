// The importer of `cmd.postgres.import` without a platform: its checks of the request, and its script
// run by bash on this host against a real Postgres 15, as the temporary machine runs it: its database
// shop is the source, and the script writes into shop_copy on the same server (playing the cluster's
// router), so one server start covers both ends.
import { spawn } from "node:child_process";
import { findBinary, type PostgresServer, startPostgres } from "@hangar/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importFlags, importScript, importSource, SOURCE_SECRET } from "../src/import.js";

const PASSWORD = "operator-secret-pw";

describe("an import's request", () => {
  it("takes postgres:// and postgresql:// URLs and names the source's database", () => {
    expect(importSource("postgres://u:p@db.example.com:5432/shop")).toEqual({
      host: "db.example.com",
      database: "shop",
    });
    expect(importSource("postgresql://u@10.1.2.3/Orders-2")).toEqual({
      host: "10.1.2.3",
      database: "Orders-2",
    });
    // libpq's default database is the user's.
    expect(importSource("postgres://alice:p@db").database).toBe("alice");
  });

  it("refuses other URLs with invalid_argument, never repeating the URL (it holds a password)", () => {
    const refused = [
      "",
      "not a url",
      "mysql://u:hunter2@db/shop",
      "postgres:///shop",
      "postgres://u:hunter2@db/template1",
      "postgres://u:hunter2@db/a=b",
      "postgres://u:hunter2@db/%zz",
    ];
    for (const url of refused) {
      let err: (Error & { code?: string }) | undefined;
      try {
        importSource(url);
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect(err?.code, url).toBe("invalid_argument");
      expect(err?.message).not.toContain("hunter2");
    }
    expect(() => importSource(42)).toThrow(/postgres:\/\//);
  });

  it("maps options to pg_dump and pg_restore flags, refusing data_only with schema_only", () => {
    expect(importFlags(undefined)).toEqual({ dump: [], restore: [] });
    expect(importFlags({ clean: true, data_only: true })).toEqual({
      dump: ["--data-only"],
      restore: ["--clean", "--if-exists"],
    });
    expect(() => importFlags({ data_only: true, schema_only: true })).toThrow(/exclude/);
    expect(() => importFlags({ clean: "yes" as never })).toThrow(/true or false/);
  });
});

/** Runs the importer's script as the machine would: its environment holds the secrets. */
function runScript(
  script: string,
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", script], {
      // Postgres 15's own bin folder first, as the member image's PATH has it.
      env: { PATH: `${dirnameOf(findBinary("postgres"))}:/usr/bin:/bin`, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

function dirnameOf(file: string): string {
  return file.slice(0, file.lastIndexOf("/"));
}

describe("the importer's script", () => {
  let server: PostgresServer;
  let sourceUrl: string;

  beforeAll(async () => {
    server = await startPostgres({ password: PASSWORD });
    sourceUrl = await server.createDatabase("shop");
    const c = new pg.Client({ connectionString: sourceUrl });
    await c.connect();
    try {
      await c.query("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE)");
      await c.query("INSERT INTO items (name) SELECT 'item ' || i FROM generate_series(1, 25) i");
    } finally {
      await c.end();
    }
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  const envFor = (url: string) => ({
    [SOURCE_SECRET]: url,
    OPERATOR_PASSWORD: PASSWORD,
    IMPORT_DATABASE: "shop_copy",
    IMPORT_TARGET_HOSTS: "127.0.0.1",
    IMPORT_TARGET_PORT: String(server.port),
  });

  it("creates the database and copies schema and rows; again with clean, it replaces them", async () => {
    const first = await runScript(importScript(importFlags({})), envFor(sourceUrl));
    expect(first.code, first.output).toBe(0);
    expect(first.output).toContain("import: done");
    const again = await runScript(importScript(importFlags({ clean: true })), envFor(sourceUrl));
    expect(again.code, again.output).toBe(0);
    const url = new URL(server.url);
    url.pathname = "/shop_copy";
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    try {
      const { rows } = await c.query("SELECT count(*)::int AS n, max(name) AS last FROM items");
      expect(rows[0]).toEqual({ n: 25, last: "item 9" });
    } finally {
      await c.end();
    }
  }, 60_000);

  it("fails with a non-zero exit when the source refuses, printing no password", async () => {
    const wrong = new URL(sourceUrl);
    wrong.password = "not-the-password";
    const res = await runScript(importScript(importFlags({})), envFor(wrong.toString()));
    expect(res.code).not.toBe(0);
    expect(res.output).toMatch(/password authentication failed/);
    expect(res.output).not.toContain("not-the-password");
    expect(res.output).not.toContain(PASSWORD);
  }, 30_000);
});

import { once } from "node:events";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "pg";
import { describe, expect, it } from "vitest";
import { ServerStartError, startPostgres } from "./mod.js";

describe("startPostgres", () => {
  it("answers queries, creates databases and stops idempotently", async () => {
    const server = await startPostgres();
    try {
      expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);
      expect(await queryOne(server.url, "select 1 as one")).toEqual({ one: 1 });
      // A throwaway cluster runs without fsync.
      expect(await queryOne(server.url, "show fsync")).toEqual({ fsync: "off" });

      const name = 'hangar "quoted" db';
      const url = await server.createDatabase(name);
      expect(await queryOne(url, "select current_database() as db")).toEqual({ db: name });
    } finally {
      await server.stop();
      await server.stop();
    }
    expect(existsSync(server.dataDir)).toBe(false);
  });

  it("initialises a data dir it is given, keeps it, and reuses it", async () => {
    const parent = await mkdtemp(join(tmpdir(), "hangar-testkit-pg-"));
    // When we are root the server runs as the postgres user, which must be able to reach the data dir.
    await chmod(parent, 0o755);
    const dataDir = join(parent, "data");
    try {
      const first = await startPostgres({ dataDir });
      try {
        expect(await queryOne(first.url, "show fsync")).toEqual({ fsync: "on" });
        await queryOne(first.url, "create table kept as select 42 as id");
      } finally {
        await first.stop();
      }
      expect(existsSync(join(dataDir, "PG_VERSION"))).toBe(true);

      const second = await startPostgres({ dataDir });
      try {
        expect(await queryOne(second.url, "select id from kept")).toEqual({ id: 42 });
      } finally {
        await second.stop();
      }
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it("with a password, refuses TCP connections without it or with a wrong one, and accepts it", async () => {
    const password = "s3cret 'quoted' pw";
    const server = await startPostgres({ password });
    try {
      const url = new URL(server.url);
      expect(decodeURIComponent(url.password)).toBe(password);
      const without = new URL(server.url);
      without.password = "";
      await expect(queryOne(without.toString(), "select 1")).rejects.toThrow(/password/i);
      const wrong = new URL(server.url);
      wrong.password = "wrong";
      await expect(queryOne(wrong.toString(), "select 1")).rejects.toThrow(
        /password authentication failed for user "postgres"/,
      );
      expect(await queryOne(server.url, "select 1 as one")).toEqual({ one: 1 });
      // A database it creates is reached with the same password.
      const db = await server.createDatabase("with_password");
      expect(await queryOne(db, "select current_database() as db")).toEqual({ db: "with_password" });
    } finally {
      await server.stop();
    }
  });

  it("comes back on its port and data after its postmaster is killed with SIGKILL", async () => {
    // A kept data dir, as npm start's: a throwaway one commits without waiting for the WAL.
    const parent = await mkdtemp(join(tmpdir(), "hangar-testkit-pg-"));
    await chmod(parent, 0o755);
    const server = await startPostgres({ dataDir: join(parent, "data"), password: "pw" });
    try {
      await queryOne(server.url, "create table kept as select 7 as id");
      const before = server.pid as number;
      process.kill(before, "SIGKILL");
      expect(await server.exited()).toBe(
        `postmaster pid ${before} is gone; its log: ${server.dataDir}/server.log`,
      );
      // Its backends leave shortly after the postmaster; until then a start is refused, so retry.
      for (let attempt = 1; ; attempt++) {
        try {
          await server.restart();
          break;
        } catch (error) {
          if (attempt >= 20) throw error;
          await sleep(250);
        }
      }
      expect(server.pid).not.toBe(before);
      expect(await queryOne(server.url, "select id from kept")).toEqual({ id: 7 });
    } finally {
      await server.stop();
      await rm(parent, { recursive: true, force: true });
    }
  });

  it("rejects with the server log when it cannot start", async () => {
    const taken = createServer().listen(0, "127.0.0.1");
    await once(taken, "listening");
    try {
      const { port } = taken.address() as AddressInfo;
      const start = startPostgres({ port });
      await expect(start).rejects.toBeInstanceOf(ServerStartError);
      await expect(start).rejects.toThrow(
        /could not bind IPv4 address "127\.0\.0\.1": Address already in use/,
      );
    } finally {
      taken.close();
    }
  });
});

async function queryOne(url: string, sql: string): Promise<unknown> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query(sql);
    return result.rows[0];
  } finally {
    await client.end();
  }
}

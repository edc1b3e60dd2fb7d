import { once } from "node:events";
import { connect } from "node:net";
import { Client } from "pg";
import { describe, expect, inject, it } from "vitest";
import { testDatabase } from "./mod.js";

describe("global setup", () => {
  it("provides a running nats-server", async () => {
    const url = new URL(inject("natsUrl"));
    const socket = connect(Number(url.port), url.hostname);
    try {
      const [greeting] = await once(socket, "data");
      expect(String(greeting)).toMatch(/^INFO \{.*"jetstream":true/);
    } finally {
      socket.destroy();
    }
  });

  it("provides a running Postgres", async () => {
    expect(await queryOne(inject("postgresUrl"), "select 1 as one")).toEqual({ one: 1 });
  });

  it("hands out a fresh database per testDatabase call", async () => {
    const first = await testDatabase(inject("postgresUrl"), "testkit_fresh");
    await queryOne(first, "create table leftover (id int)");
    const second = await testDatabase(inject("postgresUrl"), "testkit_fresh");
    expect(second).toBe(first);
    expect(await queryOne(second, "select to_regclass('leftover') as t")).toEqual({ t: null });
  });
});

async function queryOne(url: string, sql: string): Promise<unknown> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows[0];
  } finally {
    await client.end();
  }
}

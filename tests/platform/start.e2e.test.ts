// `npm start`'s launcher (scripts/start.ts) in a temp HANGAR_HOME on free ports: it starts
// nats-server and Postgres, creates the streams, writes local.json, and stops cleanly on SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort } from "@hangar/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const home = mkdtempSync(join(tmpdir(), "hangar-home-"));
// As root, Postgres runs as the postgres user, which must be able to enter HANGAR_PG_DATA's parents.
chmodSync(home, 0o755);
let child: ChildProcess | undefined;
let output = "";

function launch(env: Record<string, string>): ChildProcess {
  const c = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "scripts/start.ts"], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  c.stdout?.on("data", (d) => {
    output += d;
  });
  c.stderr?.on("data", (d) => {
    output += d;
  });
  return c;
}

async function exited(c: ChildProcess): Promise<number | null> {
  if (c.exitCode !== null) return c.exitCode;
  return new Promise((resolve) => c.once("exit", (code) => resolve(code)));
}

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill("SIGTERM");
    await exited(child);
  }
  rmSync(home, { recursive: true, force: true });
});

describe("npm start (the local platform launcher)", () => {
  it("starts NATS and Postgres under HANGAR_HOME, writes local.json, and stops on SIGTERM", async () => {
    const env = {
      HANGAR_HOME: home,
      HANGAR_NATS_PORT: String(await freePort()),
      HANGAR_PG_PORT: String(await freePort()),
      HANGAR_PG_DATA: join(home, "postgres"),
    };
    child = launch(env);
    const localJson = join(home, "local.json");
    for (let i = 0; i < 600 && !existsSync(localJson); i++) {
      if (child.exitCode !== null) throw new Error(`start exited early:\n${output}`);
      await sleep(100);
    }
    const local = JSON.parse(readFileSync(localJson, "utf8"));
    expect(local.nats_url).toBe(`nats://127.0.0.1:${env.HANGAR_NATS_PORT}`);
    expect(local.token).toMatch(/^[A-Za-z0-9_-]{32}$/);

    const nc = await connect({ servers: local.nats_url });
    const jsm = await jetstreamManager(nc);
    const names = (await jsm.streams.names().next()).sort();
    expect(names).toEqual(["APPS", "HOSTS", "MACHINES"]);
    await nc.close();

    const client = new pg.Client({ connectionString: local.database_url });
    await client.connect();
    expect((await client.query("select current_database() as db")).rows[0].db).toBe("hangar");
    await client.end();

    child.kill("SIGTERM");
    expect(await exited(child)).toBe(0);
    expect(output).toContain("[hangar] stopped");

    // A second start reuses the same data and token.
    output = "";
    child = launch(env);
    for (let i = 0; i < 600 && !output.includes("running;"); i++) {
      if (child.exitCode !== null) throw new Error(`second start exited early:\n${output}`);
      await sleep(100);
    }
    expect(JSON.parse(readFileSync(localJson, "utf8")).token).toBe(local.token);
    child.kill("SIGTERM");
    expect(await exited(child)).toBe(0);
  });

  it("says which variable to set when a port is taken", async () => {
    const net = await import("node:net");
    const blocker = net.createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => blocker.once("listening", resolve));
    const port = (blocker.address() as { port: number }).port;
    output = "";
    const c = launch({
      HANGAR_HOME: join(home, "taken"),
      HANGAR_NATS_PORT: String(port),
      HANGAR_PG_PORT: String(await freePort()),
      HANGAR_PG_DATA: join(home, "taken", "postgres"),
    });
    expect(await exited(c)).toBe(1);
    blocker.close();
    expect(output).toMatch(/could not start/);
    expect(output).toMatch(/HANGAR_NATS_PORT/);
  });
});

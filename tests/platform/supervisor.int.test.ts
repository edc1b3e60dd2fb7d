// npm start's supervisor (scripts/supervisor.ts) with real processes: a nats-server or a Postgres
// killed with SIGKILL comes back with its data, and a process that keeps crashing is restarted with
// growing, capped delays until the supervision stops.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startNatsServer, startPostgres } from "@hangar/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { type Supervisable, supervise } from "../../scripts/supervisor.js";

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe("supervise", () => {
  it("restarts a nats-server killed with SIGKILL, on its port, with its streams, and logs both", async () => {
    const server = await startNatsServer();
    const lines: string[] = [];
    const supervision = supervise("nats-server", server, { log: (line) => lines.push(line) });
    try {
      const nc = await connect({ servers: server.url });
      await (await jetstreamManager(nc)).streams.add({ name: "KEPT", subjects: ["kept.>"] });
      await nc.close();
      const before = server.pid;

      process.kill(before, "SIGKILL");
      await until("the restart", () => lines.some((l) => l.startsWith("nats-server restarted")));

      expect(lines).toEqual([
        "nats-server exited (killed by SIGKILL); restarting in 250 ms",
        `nats-server restarted (pid ${server.pid})`,
      ]);
      expect(server.pid).not.toBe(before);
      const again = await connect({ servers: server.url });
      expect((await (await jetstreamManager(again)).streams.info("KEPT")).config.subjects).toEqual([
        "kept.>",
      ]);
      await again.close();
    } finally {
      await supervision.stop();
      await server.stop();
    }
  });

  it("restarts a Postgres whose postmaster was killed with SIGKILL, with its data, and logs both", async () => {
    // A kept data dir, as npm start's; as root the server runs as postgres, which must enter it.
    const parent = await mkdtemp(join(tmpdir(), "hangar-supervise-pg-"));
    await chmod(parent, 0o755);
    const server = await startPostgres({ dataDir: join(parent, "data"), password: "pw" });
    const lines: string[] = [];
    const supervision = supervise("postgres", server, { log: (line) => lines.push(line) });
    try {
      await query(server.url, "create table kept as select 1 as id");
      const before = server.pid as number;

      process.kill(before, "SIGKILL");
      // Its backends leave shortly after the postmaster; a start before that fails and is retried.
      await until("the restart", () => lines.some((l) => l.startsWith("postgres restarted")), 60_000);

      expect(lines[0]).toBe(
        `postgres exited (postmaster pid ${before} is gone; its log: ${server.dataDir}/server.log); restarting in 250 ms`,
      );
      expect(lines.at(-1)).toBe(`postgres restarted (pid ${server.pid})`);
      expect(await query(server.url, "select id from kept")).toEqual([{ id: 1 }]);
    } finally {
      await supervision.stop();
      await server.stop();
      await rm(parent, { recursive: true, force: true });
    }
  });

  it("restarts a crash-looping process with growing, capped delays, and stops restarting when stopped", async () => {
    let child: ChildProcess | undefined;
    let ended: Promise<string> = Promise.resolve("not started");
    let starts = 0;
    // Dies with exit code 3 a moment after it starts.
    const crasher: Supervisable = {
      get pid() {
        return child?.pid;
      },
      exited: () => ended,
      async restart() {
        starts++;
        child = spawn(process.execPath, ["-e", "setTimeout(() => process.exit(3), 20)"], { stdio: "ignore" });
        ended = once(child, "exit").then(([code]) => `exit code ${code}`);
        await once(child, "spawn");
      },
    };
    await crasher.restart();
    const lines: string[] = [];
    const supervision = supervise("crasher", crasher, {
      backoff: { initialMs: 10, factor: 2, maxMs: 40, resetAfterMs: 60_000 },
      log: (line) => lines.push(line),
    });
    await until("five crashes", () => lines.filter((l) => l.includes("exited")).length >= 5);
    await supervision.stop();
    const startsWhenStopped = starts;

    expect(lines.filter((l) => l.includes("exited")).slice(0, 5)).toEqual([
      "crasher exited (exit code 3); restarting in 10 ms",
      "crasher exited (exit code 3); restarting in 20 ms",
      "crasher exited (exit code 3); restarting in 40 ms",
      "crasher exited (exit code 3); restarting in 40 ms",
      "crasher exited (exit code 3); restarting in 40 ms",
    ]);
    await ended;
    await sleep(200);
    expect(starts).toBe(startsWhenStopped);
  });

  it("keeps trying a restart that fails, with the backoff, and says why", async () => {
    let ended: Promise<string> = Promise.resolve("exit code 1");
    let attempts = 0;
    let child: ChildProcess | undefined;
    // Its first two restarts fail (the port it needs is taken, say); the third one runs.
    const flaky: Supervisable = {
      get pid() {
        return child?.pid;
      },
      exited: () => ended,
      async restart() {
        attempts++;
        if (attempts < 3) throw new Error(`port taken (attempt ${attempts})\nlong detail`);
        child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60_000)"], { stdio: "ignore" });
        ended = once(child, "exit").then(([, signal]) => `killed by ${signal}`);
        await once(child, "spawn");
      },
    };
    const lines: string[] = [];
    const supervision = supervise("flaky", flaky, {
      backoff: { initialMs: 10, factor: 2, maxMs: 1_000, resetAfterMs: 60_000 },
      log: (line) => lines.push(line),
    });
    try {
      await until("the restart", () => lines.some((l) => l.startsWith("flaky restarted")));
      expect(lines).toEqual([
        "flaky exited (exit code 1); restarting in 10 ms",
        "flaky did not restart (port taken (attempt 1)); retrying in 20 ms",
        "flaky did not restart (port taken (attempt 2)); retrying in 40 ms",
        `flaky restarted (pid ${child?.pid})`,
      ]);
    } finally {
      await supervision.stop();
      child?.kill("SIGKILL");
    }
  });
});

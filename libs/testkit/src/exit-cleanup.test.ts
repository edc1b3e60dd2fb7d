import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const REPO_ROOT = resolve(import.meta.dirname, "../../..");

interface Started {
  natsPid: number;
  natsStore: string;
  pgPid: number;
  pgData: string;
}

describe("exit cleanup", () => {
  let dir = "";
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "hangar-testkit-crash-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("kills servers and removes their dirs when the process crashes", async () => {
    const child = await runScript(dir, 'throw new Error("simulated crash");');
    const stderr = collect(child.stderr);
    const started = await firstLine(child);
    await once(child, "exit");
    expect(stderr()).toMatch(/simulated crash/);
    await expectCleanedUp(started);
  });

  it("kills servers and removes their dirs on SIGTERM, the way vitest stops its workers", async () => {
    const child = await runScript(dir, "setInterval(() => {}, 1000);");
    const started = await firstLine(child);
    child.kill("SIGTERM");
    const [, signal] = await once(child, "exit");
    expect(signal).toBe("SIGTERM");
    await expectCleanedUp(started);
  });
});

async function expectCleanedUp(started: Started): Promise<void> {
  expect(isAlive(started.natsPid)).toBe(false);
  // SIGQUIT asks the postmaster to go; it takes a moment to take its backends down.
  for (let i = 0; i < 100 && isAlive(started.pgPid); i++) await sleep(50);
  expect(isAlive(started.pgPid)).toBe(false);
  expect(existsSync(started.natsStore)).toBe(false);
  expect(existsSync(started.pgData)).toBe(false);
}

/** Runs a script that starts a nats-server and a Postgres, prints their pids and dirs, then does `then`. */
async function runScript(dir: string, then: string): Promise<ChildProcess> {
  const module = (file: string) => JSON.stringify(pathToFileURL(join(import.meta.dirname, file)).href);
  const script = join(dir, "script.mts");
  await writeFile(
    script,
    `
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startNatsServer } from ${module("nats-server.ts")};
import { startPostgres } from ${module("postgres.ts")};
const [nats, pg] = await Promise.all([startNatsServer(), startPostgres()]);
const pgPid = Number(readFileSync(join(pg.dataDir, "postmaster.pid"), "utf8").split("\\n")[0]);
console.log(JSON.stringify({ natsPid: nats.pid, natsStore: nats.storeDir, pgPid, pgData: pg.dataDir }));
${then}
`,
  );
  return spawn(process.execPath, ["--import", "tsx", script], { cwd: REPO_ROOT, stdio: "pipe" });
}

async function firstLine(child: ChildProcess): Promise<Started> {
  let out = "";
  for await (const chunk of child.stdout ?? []) {
    out += String(chunk);
    if (out.includes("\n")) return JSON.parse(out) as Started;
  }
  throw new Error(`script ended before printing what it started: ${out}`);
}

function collect(stream: NodeJS.ReadableStream | null): () => string {
  let text = "";
  stream?.on("data", (chunk) => {
    text += String(chunk);
  });
  return () => text;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // Orphans are re-parented to pid 1, which in a container may never reap them: a zombie is dead too.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

// What the Postgres cluster e2e tests and `pnpm bench postgres` share: a test platform the CLI finds
// (as after `npm start`), clusters made and looked at through `hangar postgres ...`, a cluster member's
// run on its host (its host-local IPv4 address, which the test's namespace reaches, and its cgroup),
// and the SIGKILL of every process of a member's machine.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type PgAttachReply, type PgAttachRequest, sendCommand, subjects } from "@hangar/service";
import { type CliResult, runHangar } from "../../cli/test/run-cli.js";
import { type CgroupRef, MachineCgroup } from "../../services/host-agent/src/driver/cgroup.js";
import { startTestPlatform, type TestPlatform, type TestPlatformOptions } from "../platform/harness.js";
import type { WriteTarget } from "./writer.js";

/** Every member's router: it forwards each connection to the current primary's port 5433. */
export const ROUTER_PORT = 5432;

/** A member as `hangar postgres status --json` shows it (the fields the tests read). */
export interface MemberStatus {
  id: string;
  region: string;
  host_id: string;
  volume_id: string;
  role: "primary" | "replica" | null;
  state: string;
  fenced: boolean;
  timeline: number | null;
  lsn: string | null;
  replay_lag_ms: number | null;
  healthy: boolean;
}

/** A cluster as `hangar postgres status --json` shows it. */
export interface ClusterStatus {
  name: string;
  org: string;
  region: string;
  status: string;
  primary_id: string;
  timeline: number;
  members: MemberStatus[];
  attachments: { app: string; database: string; user: string; variable: string }[];
}

/** A test platform with the CLI pointed at it and a scratch folder. */
export interface PgPlatform {
  p: TestPlatform;
  /** A folder for the test's files (apps it deploys); removed by close(). */
  work: string;
  /** Runs `hangar <args>` against the platform (cwd: `work` unless given). */
  hangar(args: string[], opts?: { cwd?: string; timeoutMs?: number }): Promise<CliResult>;
  /** Like hangar(), but throws with its output unless it exits 0; returns stdout. */
  hangarOk(args: string[], opts?: { cwd?: string; timeoutMs?: number }): Promise<string>;
  close(): Promise<void>;
}

/** Starts the whole platform (the postgres manager included) and writes the CLI's local.json. */
export async function startPgPlatform(opts: TestPlatformOptions = {}): Promise<PgPlatform> {
  const p = await startTestPlatform(opts);
  const work = mkdtempSync(join(tmpdir(), "hangar-postgres-e2e-"));
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  const hangar = (args: string[], o: { cwd?: string; timeoutMs?: number } = {}) =>
    runHangar(args, { cwd: o.cwd ?? work, env: { HANGAR_HOME: p.home }, timeoutMs: o.timeoutMs ?? 60_000 });
  return {
    p,
    work,
    hangar,
    async hangarOk(args, o) {
      const res = await hangar(args, o);
      if (res.code !== 0) {
        throw new Error(`hangar ${args.join(" ")} exited ${res.code}:\n${res.stdout}\n${res.stderr}`);
      }
      return res.stdout;
    },
    async close() {
      await p.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** `hangar postgres create` of a cluster of `size` members in region local; returns its output. */
export function createCluster(pp: PgPlatform, name: string, size: number, vmSize = "shared-cpu-1x") {
  return pp.hangarOk(
    [
      "postgres",
      "create",
      "--name",
      name,
      "--region",
      "local",
      "--vm-size",
      vmSize,
      "--volume-size",
      "1",
      "--initial-cluster-size",
      String(size),
    ],
    { timeoutMs: 300_000 },
  );
}

/** `hangar postgres status -a <name> --json`. */
export async function cliStatus(pp: PgPlatform, name: string): Promise<ClusterStatus> {
  return JSON.parse(await pp.hangarOk(["postgres", "status", "-a", name, "--json"])) as ClusterStatus;
}

/** The cluster's status from the API (GET /v1/postgres/<name>): what the CLI shows, without a CLI process per poll. */
export function clusterStatus(pp: PgPlatform, name: string): Promise<ClusterStatus> {
  return pp.p.api.ok<ClusterStatus>("GET", `/postgres/${name}`);
}

/** The members of `status` in `role`. */
export function membersIn(status: ClusterStatus, role: "primary" | "replica"): MemberStatus[] {
  return status.members.filter((m) => m.role === role);
}

/**
 * Whether the cluster is whole: `size` healthy members, exactly one an unfenced primary and the
 * others replicas (streaming: the manager calls a replica healthy when it streams from the primary).
 */
export function isWhole(status: ClusterStatus, size: number): boolean {
  const healthy = status.members.filter((m) => m.healthy);
  const primaries = healthy.filter((m) => m.role === "primary" && !m.fenced);
  return (
    status.members.length === size &&
    healthy.length === size &&
    primaries.length === 1 &&
    primaries[0]?.id === status.primary_id &&
    healthy.filter((m) => m.role === "replica").length === size - 1
  );
}

/** Polls the cluster's status until `check` holds; throws with the last status after `timeoutMs`. */
export async function waitForStatus(
  pp: PgPlatform,
  name: string,
  check: (s: ClusterStatus) => boolean,
  timeoutMs: number,
): Promise<ClusterStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ClusterStatus | undefined;
  for (;;) {
    last = await clusterStatus(pp, name).catch(() => last);
    if (last && check(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(
        `cluster ${name} after ${timeoutMs} ms: ${JSON.stringify(last)}\nits members' last log lines:\n${await memberLogs(pp, name)}`,
      );
    }
    await sleep(500);
  }
}

/** The last `lines` lines of the cluster's members' logs (`hangar logs --no-tail`), to explain a failure. */
export async function memberLogs(pp: PgPlatform, name: string, lines = 120): Promise<string> {
  const res = await pp.hangar(["logs", "-a", name, "--no-tail"], { timeoutMs: 30_000 });
  return `${res.stdout}${res.stderr}`.trimEnd().split("\n").slice(-lines).join("\n");
}

/** What the host agent recorded of a machine's current run (run.json in its state folder). */
export interface MachineRun {
  /** The machine's host-local IPv4 address: the test's namespace routes to it. */
  privateIp: string;
  pid: number | null;
  cgroup?: CgroupRef | null;
}

/** The current run of machine `id` on the platform's host. */
export function machineRun(p: TestPlatform, id: string): MachineRun {
  return JSON.parse(readFileSync(join(p.hostStateDir, id, "run.json"), "utf8")) as MachineRun;
}

/** The routers (port 5432 on each member's host-local IPv4) of `ids`, in that order. */
export function routerTargets(p: TestPlatform, ids: string[]): WriteTarget[] {
  return ids.map((id) => ({ host: machineRun(p, id).privateIp, port: ROUTER_PORT }));
}

/**
 * SIGKILLs every process of machine `id` at once (its cgroup's, frozen first on cgroup v1 so that none
 * forks away; the wrapper's process group where the run has no cgroup): the member agent, postgres
 * and the router die together, as in a crash. The host agent then applies the restart policy.
 */
export async function killMachine(p: TestPlatform, id: string): Promise<void> {
  const run = machineRun(p, id);
  if (run.cgroup) {
    await new MachineCgroup(run.cgroup.version, run.cgroup.path).killAll();
    return;
  }
  if (run.pid === null) throw new Error(`machine ${id} has no running process to kill`);
  process.kill(-run.pid, "SIGKILL");
}

/**
 * A connection URI (a user, password and database of its own) on `cluster` for the test's own client.
 * The gateway's attach puts the URI into the app's secret only and never answers it, so the test asks
 * the manager's attach command itself, on the platform's NATS as the operator; it makes app `app` first
 * (the cluster's org). The URI names <cluster>.internal:5432; the test reaches a member's router instead.
 */
export async function attachedUri(pp: PgPlatform, cluster: string, app: string): Promise<string> {
  await pp.p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  const nc = await pp.p.connectNats();
  try {
    const reply = await sendCommand<PgAttachRequest, PgAttachReply>(
      nc,
      subjects.postgres.attach,
      { cluster, app },
      60_000,
    );
    return reply.connection_uri;
  } finally {
    await nc.close();
  }
}

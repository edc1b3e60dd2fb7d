import {
  CommandError,
  type HostExecReply,
  type HostExecRequest,
  type HostPsRequest,
  type ProcessStat,
  sendCommand,
} from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ProcessDriver } from "../src/driver/mod.js";
import { serveMachineInspection } from "../src/machine-exec.js";
import { removeStateDir, runSpec, sh, tempStateDir } from "./harness.js";

// The host agent's exec and ps commands over a real nats-server, with the real driver: the command
// runs inside the machine's crun sandbox.

let stateDir: string;
let driver: ProcessDriver;
let nc: NatsConnection;
let served: Subscription[];
// A host id of its own: other test files share the run's nats-server.
const hostId = `exec-${process.pid}`;
// m1 runs; m2 is a machine of this host that is not running; runSpec's app is app1.
const apps = new Map([
  ["m1", "app1"],
  ["m2", "app1"],
]);

beforeAll(async () => {
  stateDir = await tempStateDir();
  driver = new ProcessDriver({ stateDir, pollIntervalMs: 50 });
  nc = await connect({ servers: inject("natsUrl") });
  served = serveMachineInspection({
    nc,
    hostId,
    driver,
    appOf: (id) => apps.get(id),
    logger: createLogger("test", { level: "silent" }),
  });
  await nc.flush();
  await driver.start(runSpec("m1", sh("exec sleep 1000")));
});

afterAll(async () => {
  for (const s of served ?? []) s.unsubscribe();
  await nc?.close();
  for (const m of driver?.running() ?? []) await driver.destroy(m.machineId);
  await driver?.close();
  if (stateDir) await removeStateDir(stateDir);
});

const exec = (req: Partial<HostExecRequest>) =>
  sendCommand<Partial<HostExecRequest>, HostExecReply>(nc, `cmd.host.${hostId}.exec`, req, 30_000);
const ps = (req: HostPsRequest) =>
  sendCommand<HostPsRequest, ProcessStat[]>(nc, `cmd.host.${hostId}.ps`, req);
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => "answered",
    (err: unknown) => (err instanceof CommandError ? err.code : String(err)),
  );

describe("cmd.host.<id>.exec", () => {
  it("runs the command inside the machine and answers its output and exit code", async () => {
    const res = await exec({
      app: "app1",
      machine_id: "m1",
      command: ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
      timeout_ms: 10_000,
    });
    expect(res).toEqual({ stdout: "out\n", stderr: "err\n", exit_code: 3, exit_signal: 0 });
  });

  it("runs it in the machine's pid namespace, beside its init, not on the host", async () => {
    const res = await exec({
      app: "app1",
      machine_id: "m1",
      command: ["/bin/sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; grep NSpid /proc/self/status"],
      timeout_ms: 10_000,
    });
    const [init, nspid] = res.stdout.trim().split("\n");
    expect(init).toMatch(/^\/run\/hangar-init -- \/bin\/sh -c exec sleep 1000/);
    // Seen from inside, a process has one pid only: the machine's namespace is all it knows.
    expect(nspid).toMatch(/^NSpid:\s+\d+$/);
  });

  it("kills a command that outlives its timeout", async () => {
    const res = await exec({ app: "app1", machine_id: "m1", command: ["sleep", "30"], timeout_ms: 300 });
    expect(res.exit_signal).toBe(9);
  });

  it("cuts output too large for one NATS message, and says so", async () => {
    const res = await exec({
      app: "app1",
      machine_id: "m1",
      command: ["perl", "-e", 'print "x" x 3_000_000'],
      timeout_ms: 10_000,
    });
    expect(res.exit_code).toBe(0);
    expect(res.stdout).toMatch(/^x+\n\[hangar: output truncated, at least \d+ more bytes\]\n$/);
    expect(Buffer.byteLength(JSON.stringify(res))).toBeLessThanOrEqual(1024 * 1024);
  });

  it("refuses another app's machine or one not here (not_found), one not running, and bad requests", async () => {
    const base = { command: ["id"], timeout_ms: 1_000 };
    expect(await refusal(exec({ ...base, app: "other", machine_id: "m1" }))).toBe("not_found");
    expect(await refusal(exec({ ...base, app: "app1", machine_id: "m9" }))).toBe("not_found");
    expect(await refusal(exec({ ...base, app: "app1", machine_id: "m2" }))).toBe("failed_precondition");
    for (const bad of [
      { ...base, command: [] },
      { ...base, timeout_ms: 0 },
      { ...base, timeout_ms: 10 * 60_000 },
      { ...base, command: ["echo", "a\0b"] },
    ]) {
      expect(await refusal(exec({ ...bad, app: "app1", machine_id: "m1" })), JSON.stringify(bad)).toBe(
        "invalid_argument",
      );
    }
  });
});

describe("cmd.host.<id>.ps", () => {
  it("answers the machine's processes, its init first", async () => {
    const procs = await ps({ app: "app1", machine_id: "m1" });
    expect(procs[0]).toMatchObject({ pid: 1 });
    expect(procs.map((p) => p.command)).toContain("sleep 1000");
  });

  it("refuses another app's machine and one not running", async () => {
    expect(await refusal(ps({ app: "other", machine_id: "m1" }))).toBe("not_found");
    expect(await refusal(ps({ app: "app1", machine_id: "m2" }))).toBe("failed_precondition");
  });
});

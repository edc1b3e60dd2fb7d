// Issue 11, acceptance 1 and 5 on the whole platform: a machine from a real OCI image (the node base
// image plus a layer of host tools), looked into through the API's exec and ps and `hangar machine
// exec`. As the image's root, mknod, mount, loading a module and `unshare -U` fail, CapEff is exactly
// podman's default set, Seccomp is 2 (filter), and no host process is visible. Exec and ps are refused
// without a valid token, for a machine of another app, and for a machine that is not started.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobStore, ImageRegistry } from "@hangar/oci";
import type { HostExecReply, ProcessStat } from "@hangar/service";
import { copyHostExecutables } from "@hangar/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { pushNodeLayerImage } from "../fixtures/node-layer-image.js";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";

/** Podman's default capabilities (containers-common's containers.conf), by number (linux/capability.h). */
const PODMAN_CAPS = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  NET_BIND_SERVICE: 10,
  SYS_CHROOT: 18,
  SETFCAP: 31,
};
const PODMAN_CAP_MASK = Object.values(PODMAN_CAPS).reduce((mask, bit) => mask | (1n << BigInt(bit)), 0n);

/** init_module(2)'s number: the image has no insmod, so perl makes the system call itself. */
const INIT_MODULE: Record<string, number> = { x64: 175, arm64: 105 };

/** The machine's command: it only has to keep running while the test looks inside. */
const KEEP_ALIVE = ["node", "-e", "setInterval(() => {}, 1 << 30)"];

let p: TestPlatform;
let machineId: string;

/** The node base image plus a layer of host tools (mknod, mount, unshare, perl), as a user's image would have them. */
async function probeImage(): Promise<string> {
  const nc = await p.connectNats();
  const work = await mkdtemp(join(tmpdir(), "hangar-exec-probe-"));
  try {
    const registry = await ImageRegistry.open(nc, await BlobStore.open(nc));
    const root = join(work, "root");
    await copyHostExecutables(root, [
      "/usr/bin/mknod",
      "/usr/bin/mount",
      "/usr/bin/unshare",
      "/usr/bin/perl",
    ]);
    const refs = await pushNodeLayerImage(registry, {
      repository: "exec-probe",
      root,
      work,
      variants: { v1: {} },
    });
    return refs.v1;
  } finally {
    await nc.close();
    await rm(work, { recursive: true, force: true });
  }
}

const exec = async (command: string[], opts: { app?: string; token?: string | null } = {}) =>
  p.api.call<HostExecReply>(
    "POST",
    `/apps/${opts.app ?? "probe"}/machines/${machineId}/exec`,
    { command, timeout: 20 },
    opts.token === undefined ? {} : { token: opts.token },
  );

/** Runs the command in the machine (it must be answered) and returns its result. */
async function inside(command: string[]): Promise<HostExecReply> {
  const res = await exec(command);
  if (res.status !== 200)
    throw new Error(`exec ${command.join(" ")}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** The real CLI against the platform's API, with the platform's token or the one given. */
const hangar = (args: string[], token = p.token) =>
  runHangar(args, { env: { HANGAR_HOME: p.home, HANGAR_API_URL: p.apiUrl, HANGAR_API_TOKEN: token } });

beforeAll(async () => {
  p = await startTestPlatform();
  const image = await probeImage();
  for (const app of ["probe", "other"])
    await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  const machine = await p.api.ok<{ id: string }>("POST", "/apps/probe/machines", {
    config: { image, init: { exec: KEEP_ALIVE }, guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 } },
  });
  machineId = machine.id;
  await p.api.ok("GET", `/apps/probe/machines/${machineId}/wait?state=started&timeout=60`);
}, 180_000);

afterAll(async () => {
  await p?.close();
});

describe("inside a machine, as the image's root, through the API's exec", () => {
  it("runs as root, the image's user", async () => {
    const res = await inside(["node", "-e", "console.log(process.getuid(), process.getgid())"]);
    expect(res).toEqual({ stdout: "0 0\n", stderr: "", exit_code: 0, exit_signal: 0 });
  });

  it("cannot make a device node", async () => {
    const res = await inside(["mknod", "/tmp/x", "c", "1", "3"]);
    expect(res.exit_code).not.toBe(0);
    expect(res.stderr).toMatch(/Operation not permitted/);
  });

  it("cannot mount", async () => {
    const res = await inside(["mount", "-t", "tmpfs", "none", "/tmp"]);
    expect(res.exit_code).not.toBe(0);
    expect(res.stderr).toMatch(/permission denied/i);
  });

  it("cannot load a kernel module: init_module(2) is refused with EPERM", async () => {
    const nr = INIT_MODULE[process.arch];
    if (nr === undefined) throw new Error(`no init_module number known for ${process.arch}`);
    // A module image of junk: the kernel checks CAP_SYS_MODULE (and seccomp the call) before it reads a byte.
    const script = `my $m = "\\0" x 4096; my $params = ""; my $r = syscall(${nr}, $m, length($m), $params); print "$r $!\\n"; exit($r == -1 ? 1 : 0)`;
    const res = await inside(["perl", "-e", script]);
    expect(res.stdout).toBe("-1 Operation not permitted\n");
    expect(res.exit_code).toBe(1);
  });

  it("cannot make a user namespace (unshare -U)", async () => {
    const res = await inside(["unshare", "-U", "/bin/sh", "-c", "echo escaped"]);
    expect(res.exit_code).not.toBe(0);
    expect(res.stdout).toBe("");
    expect(res.stderr).toMatch(/Operation not permitted/);
  });

  it("has exactly podman's default capabilities, and a seccomp filter", async () => {
    const { stdout } = await inside(["cat", "/proc/self/status"]);
    const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)$`, "m").exec(stdout)?.[1];
    expect(PODMAN_CAP_MASK).toBe(0x00000000800405fbn);
    expect(BigInt(`0x${field("CapEff")}`)).toBe(PODMAN_CAP_MASK);
    expect(BigInt(`0x${field("CapBnd")}`)).toBe(PODMAN_CAP_MASK);
    expect(field("Seccomp")).toBe("2");
  });

  it("runs the machine's own processes with no_new_privs", async () => {
    const { stdout } = await inside(["cat", "/proc/1/status"]);
    expect(stdout).toMatch(/^NoNewPrivs:\s*1$/m);
  });

  it("sees its own processes only: pid 1 is its init, and no process of the host", async () => {
    const list = `const fs = require("fs");
      const procs = fs.readdirSync("/proc").filter((d) => /^\\d+$/.test(d)).map((pid) => {
        try { return [Number(pid), fs.readFileSync("/proc/" + pid + "/cmdline", "utf8").split("\\0").join(" ").trim()]; }
        catch { return [Number(pid), ""]; }
      });
      console.log(JSON.stringify(procs));`;
    const seen = JSON.parse((await inside(["node", "-e", list])).stdout) as Array<[number, string]>;
    const pids = seen.map(([pid]) => pid);
    expect(pids).toContain(1);
    expect(seen.some(([, cmd]) => cmd.includes("setInterval"))).toBe(true);
    // The host runs nats-server, the services and this test; none of them is there.
    for (const [, cmd] of seen) expect(cmd).not.toMatch(/nats-server|vitest|host-agent|gateway|systemd/);
    expect(pids.length).toBeLessThan(10);
  });
});

describe("ps", () => {
  it("lists the machine's processes as it sees them, in Fly's ProcessStat shape", async () => {
    const ps = await p.api.ok<ProcessStat[]>("GET", `/apps/probe/machines/${machineId}/ps`);
    expect(ps[0]?.pid).toBe(1);
    const app = ps.find((proc) => proc.command.includes("setInterval"));
    expect(app).toMatchObject({ directory: "/", listen_sockets: [] });
    expect(app?.rss).toBeGreaterThan(0);
    expect(ps.every((proc) => !/nats-server|vitest|crun|hangar-wrapper/.test(proc.command))).toBe(true);
  });
});

describe("refusals", () => {
  it("refuses exec and ps without a valid token", async () => {
    expect((await exec(["id"], { token: null })).status).toBe(401);
    expect((await exec(["id"], { token: "not-the-token" })).status).toBe(401);
    const ps = await p.api.call("GET", `/apps/probe/machines/${machineId}/ps`, undefined, { token: "nope" });
    expect(ps.status).toBe(401);
  });

  it("answers 404 for the machine asked for as another app's", async () => {
    const res = await exec(["id"], { app: "other" });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: `machine ${machineId} not found in app other`, status: "not_found" });
    expect((await p.api.call("GET", `/apps/other/machines/${machineId}/ps`)).status).toBe(404);
  });
});

describe("hangar machine exec", () => {
  it("prints the command's output and exits with its code; a wrong token or another app exits 1", async () => {
    const ok = await hangar([
      "machine",
      "exec",
      machineId,
      "-a",
      "probe",
      "--",
      "/bin/sh",
      "-c",
      "echo out; echo err >&2; exit 7",
    ]);
    expect(ok).toEqual({ code: 7, stdout: "out\n", stderr: "err\n" });
    const denied = await hangar(["machine", "exec", machineId, "-a", "probe", "--", "id"], "stolen");
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^Error: .*\nthe API token was refused/);
    const other = await hangar(["machine", "exec", machineId, "-a", "other", "--", "id"]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/not found in app other/);
  });
});

describe("a machine that is not started", () => {
  it("refuses exec and ps with 412", async () => {
    await p.api.ok("POST", `/apps/probe/machines/${machineId}/stop`);
    await p.api.ok("GET", `/apps/probe/machines/${machineId}/wait?state=stopped&timeout=60`);
    const res = await exec(["id"]);
    expect(res.status).toBe(412);
    expect(res.body).toMatchObject({ status: "failed_precondition" });
    expect((await p.api.call("GET", `/apps/probe/machines/${machineId}/ps`)).status).toBe(412);
  });
});

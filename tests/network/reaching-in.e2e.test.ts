// Issue 12, acceptance 3 on the whole platform: `hangar proxy 0:<port>` forwards a local port to a
// machine's echo server through the gateway's tunnel (the gateway connects to the machine's private
// address itself; consoles go through the host agent); `hangar ssh console -C 'cat
// /etc/hostname'` prints the machine id; an interactive session, driven through a real PTY (the CLI
// under util-linux `script`), runs two commands; and all of it is refused without a valid token
// (401, the CLI exiting non-zero with a message). Also prints tunnel vs direct throughput (measured,
// never asserted).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HostExecReply } from "@hangar/service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hangarArgv, runCliIn, startHangar } from "../../cli/test/run-cli.js";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { createMachine, ECHO_PORT, pushNetworkImage, SERVE } from "./machines.js";
import { echoThroughput, startHangarProxy, tcpConnect } from "./tunnel-throughput.js";

let p: TestPlatform;
let machineId: string;
/** A machine of the app that was never started (created with skip_launch). */
let idleId: string;
/** HANGAR_HOMEs whose local.json holds the platform's token, and a wrong one. */
let home: string;
let badHome: string;

/** A HANGAR_HOME whose local.json points the CLI at the platform with `token`. */
function cliHome(token: string): string {
  const dir = mkdtempSync(join(tmpdir(), "hangar-reach-cli-"));
  writeFileSync(join(dir, "local.json"), JSON.stringify({ api_url: p.apiUrl, token }));
  return dir;
}

/** Asks the gateway for an upgrade; resolves to its answer: 101 (the socket closed at once) or an error. */
function upgradeStatus(path: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${p.apiUrl}/v1${path}`, {
      headers: {
        connection: "Upgrade",
        upgrade: "hangar-tunnel",
        ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      },
    });
    req.once("upgrade", (_res, socket) => {
      socket.destroy();
      resolve({ status: 101, body: "" });
    });
    req.once("response", (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        body += d;
      });
      res.once("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once("error", reject);
    req.end();
  });
}

/** `hangar proxy 0:<remote> -a reach [args]` with the platform's token, or the one given. */
const startProxy = (args: string[] = []) =>
  startHangarProxy({ apiUrl: p.apiUrl, token: p.token, app: "reach", remotePort: ECHO_PORT, args });

beforeAll(async () => {
  p = await startTestPlatform();
  const image = await pushNetworkImage(p);
  for (const app of ["reach", "other"])
    await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  machineId = (await createMachine(p, "reach", { image, cmd: SERVE })).id;
  idleId = (
    await p.api.ok<{ id: string }>("POST", "/apps/reach/machines", {
      skip_launch: true,
      config: { image, init: { exec: SERVE }, guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 } },
    })
  ).id;
  home = cliHome(p.token);
  badHome = cliHome("not-the-token");
}, 240_000);

afterAll(async () => {
  for (const dir of [home, badHome]) if (dir) rmSync(dir, { recursive: true, force: true });
  await p?.close();
});

describe("hangar proxy", () => {
  it("forwards a local port to the machine's port: a local client gets its bytes back", async () => {
    const proxy = await startProxy();
    try {
      for (const message of ["hello through the tunnel\n", "x".repeat(3 * 1024 * 1024)]) {
        const socket = await tcpConnect("127.0.0.1", proxy.port);
        const chunks: Buffer[] = [];
        socket.on("data", (d: Buffer) => chunks.push(d));
        socket.end(message);
        await once(socket, "close");
        expect(Buffer.concat(chunks).toString()).toBe(message);
      }
    } finally {
      const result = await proxy.stop();
      expect(result.code).toBe(0);
    }
  }, 60_000);

  it("moves bytes at a rate printed beside a direct connection's (measured, not asserted)", async () => {
    const { stdout } = await p.api.ok<HostExecReply>("POST", `/apps/reach/machines/${machineId}/exec`, {
      command: [
        "node",
        "-e",
        "const os = require('os'); console.log(Object.values(os.networkInterfaces()).flat().find((a) => a.family === 'IPv4' && !a.internal).address)",
      ],
    });
    const privateIp = stdout.trim();
    const proxy = await startProxy(["--machine", machineId]);
    try {
      const direct = await echoThroughput(await tcpConnect(privateIp, ECHO_PORT));
      const tunnel = await echoThroughput(await tcpConnect("127.0.0.1", proxy.port));
      process.stdout.write(
        `echo of 64 MiB, both ways at once: direct to ${privateIp}:${ECHO_PORT} ${direct.toFixed(1)} MB/s, ` +
          `through hangar proxy ${tunnel.toFixed(1)} MB/s (${(tunnel / direct).toFixed(2)} x direct)\n`,
      );
      expect(tunnel).toBeGreaterThan(0);
    } finally {
      await proxy.stop();
    }
  }, 120_000);

  it("is refused without a valid token, and for an unknown app or a machine not started", async () => {
    const bad = await startHangar(["proxy", `0:${ECHO_PORT}`, "-a", "reach"], {
      env: { HANGAR_API_URL: p.apiUrl, HANGAR_API_TOKEN: "not-the-token" },
    }).exited;
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/malformed token/);
    expect(bad.stderr).toMatch(/the API token was refused/);
    const unknown = await runCliIn(home, ["proxy", `0:${ECHO_PORT}`, "-a", "nowhere"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/app nowhere not found/);
    const idle = await runCliIn(home, ["proxy", `0:${ECHO_PORT}`, "-a", "reach", "--machine", idleId]);
    expect(idle.code).not.toBe(0);
    expect(idle.stderr).toMatch(new RegExp(`machine ${idleId} is created: it must be started`));
  }, 60_000);
});

describe("hangar ssh console", () => {
  it("-C 'cat /etc/hostname' prints the machine id", async () => {
    const res = await runCliIn(home, ["ssh", "console", "-a", "reach", "-C", "cat /etc/hostname"]);
    expect(res).toEqual({ code: 0, stdout: `${machineId}\n`, stderr: "" });
  }, 30_000);

  it("keeps stderr apart and exits with the remote command's exit code", async () => {
    const res = await runCliIn(home, [
      "ssh",
      "console",
      "-a",
      "reach",
      "--machine",
      machineId,
      "-C",
      "sh -c 'echo out; echo err >&2; exit 7'",
    ]);
    expect(res).toEqual({ code: 7, stdout: "out\n", stderr: "err\n" });
  }, 30_000);

  it("gives a command run without input an empty one: cat ends at once", async () => {
    const res = await runCliIn(home, ["ssh", "console", "-a", "reach", "-C", "cat"]);
    expect(res).toEqual({ code: 0, stdout: "", stderr: "" });
  }, 30_000);

  it("runs an interactive shell on a PTY: two commands, then exit", async () => {
    // util-linux script gives the CLI a real terminal: it sees a TTY, asks for one remotely, goes raw.
    const cli = hangarArgv(["ssh", "console", "-a", "reach"])
      .map((a) => `'${a}'`)
      .join(" ");
    const child = spawn("script", ["-q", "-e", "-c", cli, "/dev/null"], {
      env: { ...process.env, HANGAR_HOME: home, HANGAR_API_URL: "", HANGAR_API_TOKEN: "" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let screen = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      screen += d;
    });
    const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
    const until = async (pattern: RegExp) => {
      const deadline = Date.now() + 20_000;
      while (!pattern.test(screen)) {
        if (Date.now() > deadline) throw new Error(`waited for ${pattern}; the screen:\n${screen}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await until(/[#$] $/m);
      // The shell computes the answers: the echoed command lines never contain them.
      child.stdin.write('test -t 0 && echo "pty-$((40 + 2))"\r');
      await until(/pty-42/);
      child.stdin.write('echo "second-$((3 * 3))" "$(cat /etc/hostname)"\r');
      await until(/second-9 \S+/);
      child.stdin.write("exit 3\r");
      expect(await exited).toBe(3);
    } finally {
      child.kill("SIGKILL");
    }
    expect(screen).toContain(`second-9 ${machineId}`);
    // The shell has its terminal as controlling terminal: job control works.
    expect(screen).not.toContain("job control turned off");
  }, 60_000);

  it("is refused without a valid token, for a machine not started, and for another app's machine", async () => {
    const bad = await runCliIn(badHome, ["ssh", "console", "-a", "reach", "-C", "true"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/malformed token/);
    const idle = await runCliIn(home, ["ssh", "console", "-a", "reach", "--machine", idleId, "-C", "true"]);
    expect(idle.code).toBe(1);
    expect(idle.stderr).toMatch(/is created: tunnels need a started machine/);
    const other = await runCliIn(home, [
      "ssh",
      "console",
      "-a",
      "other",
      "--machine",
      machineId,
      "-C",
      "true",
    ]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(new RegExp(`machine ${machineId} not found in app other`));
  }, 30_000);
});

describe("the gateway's tunnel endpoints", () => {
  const tunnel = () => `/apps/reach/machines/${machineId}/tunnel?port=${ECHO_PORT}`;

  it("answer 401 with Fly's error body without a token or with a wrong one, 101 with the right one", async () => {
    for (const token of [undefined, "not-the-token"]) {
      const res = await upgradeStatus(tunnel(), token);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ status: "unauthenticated" });
    }
    expect((await upgradeStatus(tunnel(), p.token)).status).toBe(101);
    expect((await upgradeStatus(`/apps/reach/console?cmd=true`, p.token)).status).toBe(101);
  });

  it("refuse a bad port, a port nothing listens on, an unknown app and a plain (not upgraded) request", async () => {
    const badPort = await upgradeStatus(`/apps/reach/machines/${machineId}/tunnel?port=70000`, p.token);
    expect(badPort.status).toBe(400);
    const closed = await upgradeStatus(`/apps/reach/machines/${machineId}/tunnel?port=1`, p.token);
    expect(closed.status).toBe(503);
    expect(JSON.parse(closed.body).error).toMatch(/cannot reach port 1 of machine .*ECONNREFUSED/);
    expect((await upgradeStatus(`/apps/nowhere/tunnel?port=1`, p.token)).status).toBe(404);
    const plain = await p.api.call("GET", `/apps/reach/machines/${machineId}/tunnel?port=${ECHO_PORT}`);
    expect(plain.status).toBe(400);
    expect(JSON.stringify(plain.body)).toMatch(/Upgrade: hangar-tunnel/);
  });
});

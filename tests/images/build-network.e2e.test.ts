// Acceptance 5 of issue 14, on the whole platform: a RUN step has network by default, in the
// build's own namespace, NATed out. From there the package registry answers, while the gateway,
// NATS, the builder's ops port and a port the host listens on for every address do not; a RUN
// --network=none reaches nothing. Then the bounds: a RUN that never ends does not hold back a
// second build (two run at once) and is killed by `hangar builds cancel` or by Ctrl-C in the
// `hangar deploy` that started it; a build's own deadline (timeout) fails it as timed out.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar, startHangar } from "../../cli/test/run-cli.js";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";

const run = promisify(execFile);
const NODE_MAJOR = process.versions.node.split(".")[0] as string;
const APP = "netcheck";
// A RUN that never ends by itself (node is in every base image; sleep is not in all).
// Prints the RUN's cgroups (the host's cgroup v1 hierarchies: no cgroup namespace).
const LIMITS = 'console.log(require("node:fs").readFileSync("/proc/self/cgroup", "utf8"))';
const STUCK = 'RUN ["node", "-e", "setTimeout(() => {}, 1e9)"]';
let p: TestPlatform;
let work: string;
let listener: Server;

interface BuildView {
  id: string;
  status: string;
  steps: Array<{ instruction: string; output: string }>;
  error?: { message: string; reason?: string; output: string };
}

// Tries every host:port at once, for 3 s, and prints `host:port connected|failed <why>`, one a line.
const PROBE = `const net = require("node:net");
const probe = (t) => new Promise((done) => {
  const i = t.lastIndexOf(":");
  const s = net.connect({ host: t.slice(0, i), port: Number(t.slice(i + 1)), timeout: 3000 });
  s.on("connect", () => { s.destroy(); done(t + " connected"); });
  s.on("timeout", () => { s.destroy(); done(t + " failed timeout"); });
  s.on("error", (e) => done(t + " failed " + e.code));
});
Promise.all(process.argv.slice(2).map(probe)).then((lines) => console.log(lines.join("\\n")));`;

/** The host's first non-loopback IPv4 address: where a port bound to every address listens. */
function hostAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  throw new Error("the host has no non-loopback IPv4 address");
}

async function startBuild(dockerfile: string, query = ""): Promise<string> {
  const dir = mkdtempSync(join(work, "ctx-"));
  writeFileSync(join(dir, "Dockerfile"), dockerfile);
  writeFileSync(join(dir, "probe.js"), PROBE);
  const tar = join(work, `${Date.now()}.tar`);
  await run("tar", ["-cf", tar, "-C", dir, "."]);
  const res = await fetch(`${p.apiUrl}/v1/apps/${APP}/builds${query}`, {
    method: "POST",
    headers: { authorization: `Bearer ${p.token}`, "content-type": "application/x-tar" },
    body: await readFile(tar),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as BuildView).id;
}

async function build(id: string): Promise<BuildView> {
  return p.api.ok<BuildView>("GET", `/apps/${APP}/builds/${id}`);
}

async function until(id: string, wanted: (b: BuildView) => boolean, timeoutMs: number): Promise<BuildView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = await build(id);
    if (wanted(b)) return b;
    if (Date.now() > deadline) throw new Error(`build ${id} still ${b.status} after ${timeoutMs} ms`);
    await sleep(300);
  }
}

const over = (b: BuildView) => b.status === "succeeded" || b.status === "failed";

beforeAll(async () => {
  p = await startTestPlatform();
  work = mkdtempSync(join(tmpdir(), "hangar-build-network-"));
  await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
  // The CLI finds the platform the way it does after `npm start`: through $HANGAR_HOME/local.json.
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  // A port bound to every address, as an ops port may be: the host answers it from anywhere but a build.
  listener = createServer((s) => s.end());
  await new Promise<void>((resolve) => listener.listen(0, "0.0.0.0", resolve));
}, 120_000);

afterAll(async () => {
  listener?.close();
  await p?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("RUN network", () => {
  it("reaches the package registry, and nothing of the host", async () => {
    const host = hostAddress();
    const open = (listener.address() as { port: number }).port;
    const gateway = Number(new URL(p.apiUrl).port);
    const nats = Number(new URL(p.nats.url).port);
    const targets = [
      "registry.npmjs.org:443",
      `${host}:${open}`,
      `${host}:${gateway}`,
      `127.0.0.1:${gateway}`,
      `${host}:${nats}`,
      `${host}:4284`,
    ];
    const id = await startBuild(
      [
        `FROM node:${NODE_MAJOR}-slim`,
        "COPY probe.js /probe.js",
        `RUN node /probe.js ${targets.join(" ")}`,
        `RUN --network=none node /probe.js registry.npmjs.org:443 1.1.1.1:443`,
        `RUN ["node", "-e", ${JSON.stringify(LIMITS)}]`,
        "",
      ].join("\n"),
    );
    const b = await until(id, over, 180_000);
    expect(b.status, JSON.stringify(b.error)).toBe("succeeded");
    const withNet = b.steps.find((s) => s.instruction.startsWith("RUN node"))?.output ?? "";
    const lines = new Map(
      withNet
        .trim()
        .split("\n")
        .map((l) => [l.split(" ")[0], l.split(" ").slice(1).join(" ")]),
    );
    expect(lines.get("registry.npmjs.org:443"), withNet).toBe("connected");
    // The host answers the open port itself: only the build's namespace cannot reach it.
    const direct = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port: open }, () => resolve(true)).on("error", () => resolve(false));
      s.end();
    });
    expect(direct).toBe(true);
    for (const t of targets.slice(1)) expect(lines.get(t), withNet).toMatch(/^failed /);
    const none = b.steps.find((s) => s.instruction.startsWith("RUN --network=none"))?.output ?? "";
    expect(none).toMatch(/registry\.npmjs\.org:443 failed/);
    expect(none).toMatch(/1\.1\.1\.1:443 failed/);
    // Every RUN of the build is in the build's cgroups, which bound its memory, CPU and processes.
    const cgroups = b.steps.find((s) => s.instruction.startsWith('RUN ["node"'))?.output ?? "";
    for (const controller of ["memory", "cpu", "pids"]) {
      expect(cgroups).toMatch(
        new RegExp(`^\\d+:(?:[a-z,]+,)?${controller}(?:,[a-z,]+)?:/hangar-builds/\\S+-${id}$`, "m"),
      );
    }
  }, 200_000);
});

describe("build bounds", () => {
  it("runs a second build beside a stuck one, and cancel kills the stuck one", async () => {
    const stuck = await startBuild(`FROM node:${NODE_MAJOR}-slim\n${STUCK}\n`);
    await until(stuck, (b) => b.status === "running", 60_000);
    const second = await startBuild(`FROM node:${NODE_MAJOR}-slim\nRUN echo beside\n`);
    expect((await until(second, over, 120_000)).status).toBe("succeeded");
    expect((await build(stuck)).status).toBe("running");

    const cancel = await runHangar(["builds", "cancel", stuck, "-a", APP, "--json"], {
      cwd: work,
      env: { HANGAR_HOME: p.home },
      timeoutMs: 30_000,
    });
    expect(cancel.code, cancel.stderr).toBe(0);
    const cancelled = await build(stuck);
    expect(cancelled.status).toBe("failed");
    expect(cancelled.error?.reason).toBe("cancelled");
    // Cancelling twice is the same cancel; a build that is over otherwise cannot be cancelled.
    expect((await p.api.call("POST", `/apps/${APP}/builds/${stuck}/cancel`)).status).toBe(200);
    const done = await p.api.call("POST", `/apps/${APP}/builds/${second}/cancel`);
    expect(done.status).toBe(412);
    expect(JSON.stringify(done.body)).toMatch(/build already succeeded/);
  }, 240_000);

  it("cancels the build hangar deploy started when it gets Ctrl-C", async () => {
    const dir = mkdtempSync(join(work, "deploy-"));
    writeFileSync(join(dir, "Dockerfile"), `FROM node:${NODE_MAJOR}-slim\n${STUCK}\n`);
    const deploy = startHangar(["deploy", "-a", APP], {
      cwd: dir,
      env: { HANGAR_HOME: p.home },
      timeoutMs: 120_000,
    });
    let id: string | undefined;
    for (let i = 0; i < 600 && id === undefined; i++) {
      id = /Building (\S+)/.exec(deploy.output().stdout)?.[1];
      await sleep(100);
    }
    if (id === undefined)
      throw new Error(`hangar deploy printed no build id: ${JSON.stringify(deploy.output())}`);
    await until(id, (b) => b.status === "running", 60_000);
    deploy.child.kill("SIGINT");
    const ended = await deploy.exited;
    expect(ended.code, ended.stderr).not.toBe(0);
    expect(ended.stdout).toMatch(new RegExp(`Cancelling build ${id}`));
    expect((await build(id)).error?.reason).toBe("cancelled");
  }, 150_000);

  it("fails a build past its deadline as timed out", async () => {
    const id = await startBuild(`FROM node:${NODE_MAJOR}-slim\n${STUCK}\n`, "?timeout=5");
    const b = await until(id, over, 60_000);
    expect(b.status).toBe("failed");
    expect(b.error?.message).toBe("build timed out after 5 s");
    expect(b.error?.reason).toBe("timed_out");
  }, 90_000);
});

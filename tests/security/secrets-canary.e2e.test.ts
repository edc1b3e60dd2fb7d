// Issue 13, acceptance 2: a random canary secret set on an app reaches its machine's environment
// (read from inside with exec) and nothing else: not in plain, base64 or hex form in the NATS store
// directory, any service log, any API response the test got, `ps -e -o args`, the environ of any host
// process but the machine's own, the host agent's state folder (run.json, specs), the runtime bundles
// or the build cache. It prints where it looked and how much it scanned.

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helloConfig, startTestPlatform, type TestPlatform } from "../platform/harness.js";

const APP = "canary";
const NAME = "CANARY_SECRET";
const canary = randomBytes(16).toString("hex");

/**
 * The forms the canary could leak in: itself, its hex, and its base64 at each of the three byte
 * alignments it could have inside a longer encoded text (the edges, which depend on neighbours, cut off).
 */
const forms: Array<[string, Buffer]> = [
  ["plain", Buffer.from(canary)],
  ["hex", Buffer.from(Buffer.from(canary).toString("hex"))],
  ...[0, 1, 2].flatMap((pad): Array<[string, Buffer]> => {
    const b64 = Buffer.concat([Buffer.alloc(pad), Buffer.from(canary)]).toString("base64");
    const inner = b64.slice(4, -4);
    return [
      [`base64+${pad}`, Buffer.from(inner)],
      [`base64url+${pad}`, Buffer.from(inner.replaceAll("+", "-").replaceAll("/", "_"))],
    ];
  }),
];

/** The forms of the canary found in `data`. */
function leaks(data: Buffer): string[] {
  return forms.filter(([, needle]) => data.includes(needle)).map(([name]) => name);
}

let p: TestPlatform;
let machineId: string;
/** Every API answer the test got, but the exec that reads the secret inside the machine on purpose. */
const responses: string[] = [];

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await p.api.call<T>(method, path, body);
  responses.push(JSON.stringify(res.body));
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Regular files under `dir` (not following links); missing folders give none. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Scans every file under the folders; returns what it found where, and how many files it read. */
function scanFiles(dirs: string[]): { files: number; found: string[] } {
  const found: string[] = [];
  let files = 0;
  for (const dir of dirs) {
    for (const file of filesUnder(dir)) {
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch {
        continue; // gone meanwhile (a log rotated, a temp file)
      }
      files++;
      const hit = leaks(data);
      if (hit.length > 0) found.push(`${file}: ${hit.join(", ")}`);
    }
  }
  return { files, found };
}

/** The pids of a process and all its descendants, from /proc/<pid>/stat's ppid. */
function processTree(root: number): Set<number> {
  const parent = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(name), ppid);
    } catch {
      // exited meanwhile
    }
  }
  const tree = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!tree.has(pid) && tree.has(ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return tree;
}

beforeAll(async () => {
  p = await startTestPlatform();
  await api("POST", "/apps", { app_name: APP, org_slug: "personal" });
  await api("POST", `/apps/${APP}/secrets`, { values: { [NAME]: canary } });
  const m = await api<{ id: string }>("POST", `/apps/${APP}/machines`, { config: helloConfig() });
  machineId = m.id;
  await api("GET", `/apps/${APP}/machines/${machineId}/wait?state=started&timeout=30`);
}, 180_000);

afterAll(async () => {
  await p?.close();
});

describe("a canary secret", () => {
  it("is in the machine's environment, read from inside with exec", async () => {
    const res = await p.api.call<{ stdout: string; exit_code: number }>(
      "POST",
      `/apps/${APP}/machines/${machineId}/exec`,
      { command: ["printenv", NAME], timeout: 20 },
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.stdout.trim()).toBe(canary);
  });

  it("appears nowhere else", async () => {
    // What the API shows of the app, its machine and its secrets (all kept in `responses`).
    const listed = await api<{ secrets: Array<{ name: string; digest: string }> }>(
      "GET",
      `/apps/${APP}/secrets`,
    );
    expect(listed.secrets.map((s) => s.name)).toEqual([NAME]);
    await api("GET", `/apps/${APP}`);
    await api("GET", `/apps/${APP}/machines`);
    await api("GET", `/apps/${APP}/machines/${machineId}`);
    await api("GET", `/apps/${APP}/machines/${machineId}/events`);
    const apiHits = responses.filter((r) => leaks(Buffer.from(r)).length > 0);

    const run = JSON.parse(readFileSync(join(p.hostStateDir, machineId, "run.json"), "utf8")) as {
      pid: number;
    };
    const machine = processTree(run.pid);
    let processes = 0;
    let machineHasIt = 0;
    const environHits: string[] = [];
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      let environ: Buffer;
      try {
        environ = readFileSync(`/proc/${name}/environ`);
      } catch {
        continue; // exited meanwhile, or a kernel thread
      }
      processes++;
      if (leaks(environ).length === 0) continue;
      if (machine.has(Number(name))) machineHasIt++;
      else
        environHits.push(
          `pid ${name} (${readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " ")})`,
        );
    }
    const ps = execFileSync("ps", ["-e", "-o", "args"], { maxBuffer: 64 * 2 ** 20 });

    const places = {
      "NATS store": join(p.home, "nats"),
      "service logs": join(p.home, "logs"),
      "host agent state": p.hostStateDir,
      "runtime bundles": "/run/hangar/bundles",
      "build cache": join(p.home, "builder"),
    };
    const scanned = Object.entries(places).map(([what, dir]) => ({ what, dir, ...scanFiles([dir]) }));
    for (const s of scanned)
      process.stdout.write(`canary: ${s.what} (${s.dir}): ${s.files} files, ${s.found.length} hits\n`);
    // crun's state (/run/hangar/crun, tmpfs, root-only) keeps the running container's spec, environment
    // included, for exec: like the machine's own /proc/<pid>/environ, it is the machine's, in memory.
    process.stdout.write("canary: not scanned: /run/hangar/crun (the running container's in-memory state)\n");
    process.stdout.write(
      `canary: ${responses.length} API responses, ${apiHits.length} hits; ps -e -o args: ${ps.toString().split("\n").length} lines, ${leaks(ps).length} hits; ` +
        `/proc/*/environ: ${processes} processes, ${environHits.length} hits outside the machine's ${machine.size} processes (${machineHasIt} of them hold it)\n`,
    );
    expect(machine.size).toBeGreaterThan(1);
    // The scan sees the secret where it must be: else finding nothing elsewhere would prove nothing.
    expect(machineHasIt).toBeGreaterThan(0);
    expect(scanned.find((s) => s.what === "NATS store")?.files).toBeGreaterThan(0);
    expect(scanned.find((s) => s.what === "service logs")?.files).toBeGreaterThan(0);
    expect(scanned.flatMap((s) => s.found)).toEqual([]);
    expect(apiHits).toEqual([]);
    expect(leaks(ps)).toEqual([]);
    expect(environHits).toEqual([]);
  });
});

// Issue 19, acceptance 5 (second half): fly.toml [[files]] deployed with `hangar deploy` are in the
// machine (read from inside with exec): a raw_value, a local_path (binary) and a secret_name file, the
// secret's decoded value in the file and nowhere else: not in GET of the machine, its events, the
// MACHINES stream or the services' logs. A file whose secret is not set fails the start, naming it;
// a guest_path that climbs with .. is refused with a 400.
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { machinesStream } from "@hangar/domain";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { helloConfig, helloDir, startTestPlatform, type TestPlatform } from "./harness.js";

const APP = "files-app";
const SECRET = "FILE_SECRET";
const canary = randomBytes(16).toString("hex");
const DEPLOY_TIMEOUT_MS = 120_000;

/** The canary plain and base64-encoded at each byte alignment (the edges, which depend on neighbours, cut off). */
const forms: Buffer[] = [
  Buffer.from(canary),
  ...[0, 1, 2].map((pad) =>
    Buffer.from(
      Buffer.concat([Buffer.alloc(pad), Buffer.from(canary)])
        .toString("base64")
        .slice(4, -4),
    ),
  ),
];
const leaks = (data: Buffer | string): boolean => forms.some((needle) => Buffer.from(data).includes(needle));

let p: TestPlatform;
let work: string;
const responses: string[] = [];

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await p.api.call<T>(method, path, body);
  responses.push(JSON.stringify(res.body));
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** What `command` prints inside the machine (the exec answer is not kept in `responses`: it reads the file on purpose). */
async function inside(machineId: string, command: string[]): Promise<string> {
  const res = await p.api.call<{ stdout: string; stderr: string; exit_code: number }>(
    "POST",
    `/apps/${APP}/machines/${machineId}/exec`,
    { command, timeout: 20 },
  );
  if (res.status !== 200 || res.body.exit_code !== 0)
    throw new Error(`exec ${command.join(" ")}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.stdout;
}

beforeAll(async () => {
  p = await startTestPlatform();
  work = mkdtempSync(join(tmpdir(), "hangar-machine-files-"));
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  mkdirSync(join(work, "data"));
  writeFileSync(join(work, "data", "local.bin"), Buffer.from([0, 255, 10]));
  writeFileSync(
    join(work, "fly.toml"),
    [
      `app = "${APP}"`,
      "[build]",
      `image = "dir:${helloDir}"`,
      "[http_service]",
      "internal_port = 8080",
      'auto_stop_machines = "off"',
      "[[files]]",
      'guest_path = "/config/greeting.txt"',
      'raw_value = "hello from fly.toml"',
      "[[files]]",
      'guest_path = "/config/local.bin"',
      'local_path = "data/local.bin"',
      "[[files]]",
      'guest_path = "/config/secret.txt"',
      `secret_name = "${SECRET}"`,
      "",
    ].join("\n"),
  );
  await api("POST", "/apps", { app_name: APP, org_slug: "personal" });
  // As on Fly, a file's secret holds the contents base64-encoded.
  await api("POST", `/apps/${APP}/secrets`, {
    values: { [SECRET]: Buffer.from(canary).toString("base64") },
  });
}, DEPLOY_TIMEOUT_MS);

afterAll(async () => {
  await p?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("[[files]]", () => {
  let machineId: string;

  it(
    "are in the deployed machine: raw_value, local_path and the secret's decoded value",
    async () => {
      const deploy = await runHangar(["deploy"], {
        cwd: work,
        env: { HANGAR_HOME: p.home },
        timeoutMs: DEPLOY_TIMEOUT_MS,
      });
      expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
      expect(deploy.stderr).not.toMatch(/files is not supported/);
      const [machine, ...others] = await api<Array<{ id: string }>>("GET", `/apps/${APP}/machines`);
      expect(others).toEqual([]);
      machineId = (machine as { id: string }).id;
      expect(await inside(machineId, ["cat", "/config/greeting.txt"])).toBe("hello from fly.toml");
      expect(await inside(machineId, ["base64", "/config/local.bin"])).toBe("AP8K\n");
      expect(await inside(machineId, ["cat", "/config/secret.txt"])).toBe(canary);
      // Fly's default mode, readable by the machine's user (root here: a dir: machine runs as its range's root).
      expect(await inside(machineId, ["stat", "-c", "%a %u", "/config/secret.txt"])).toBe("644 0\n");
    },
    DEPLOY_TIMEOUT_MS,
  );

  it("keep the secret's value out of the machine's config and events, the MACHINES stream and the logs", async () => {
    const got = await api<{ config: { files: unknown[] } }>("GET", `/apps/${APP}/machines/${machineId}`);
    expect(got.config.files).toEqual([
      {
        guest_path: "/config/greeting.txt",
        raw_value: Buffer.from("hello from fly.toml").toString("base64"),
      },
      { guest_path: "/config/local.bin", raw_value: "AP8K" },
      { guest_path: "/config/secret.txt", secret_name: SECRET },
    ]);
    await api("GET", `/apps/${APP}/machines/${machineId}/events`);
    await api("GET", `/apps/${APP}/machines`);
    expect(responses.filter(leaks)).toEqual([]);

    const nc = await p.connectNats();
    let messages = 0;
    let naming = 0;
    const found: number[] = [];
    try {
      const jsm = await jetstreamManager(nc);
      const { state } = await jsm.streams.info(machinesStream.name);
      for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(machinesStream.name, { seq });
        if (!m) throw new Error(`MACHINES has no message ${seq}`);
        messages++;
        const data = Buffer.from(m.data);
        if (data.includes(Buffer.from(SECRET))) naming++;
        if (leaks(data)) found.push(seq);
      }
      process.stdout.write(`MACHINES: ${JSON.stringify(state)}\n`);
    } finally {
      await nc.close();
    }
    let logFiles = 0;
    const logHits: string[] = [];
    const logs = join(p.home, "logs");
    for (const name of existsSync(logs) ? readdirSync(logs, { recursive: true }) : []) {
      const path = join(logs, String(name));
      let data: Buffer;
      try {
        data = readFileSync(path);
      } catch {
        continue; // a folder, or gone meanwhile
      }
      logFiles++;
      if (leaks(data)) logHits.push(path);
    }
    process.stdout.write(
      `machine files: ${responses.length} API responses, MACHINES: ${messages} messages (${naming} name the secret), logs: ${logFiles} files; ` +
        `hits: ${found.length} messages, ${logHits.length} log files\n`,
    );
    // The scan reads what holds the config: the secret's name is there, its value is not.
    expect(naming).toBeGreaterThan(0);
    expect(logFiles).toBeGreaterThan(0);
    expect(found).toEqual([]);
    expect(logHits).toEqual([]);
  });

  it("whose secret is not set fail the machine's start, naming the secret", async () => {
    const m = await api<{ id: string }>("POST", `/apps/${APP}/machines`, {
      config: helloConfig({ files: [{ guest_path: "/config/x", secret_name: "NOT_SET" }] }),
    });
    // The start fails at once; the events say so as soon as the host agent has recorded it.
    let reason: string | undefined;
    for (const deadline = Date.now() + 30_000; reason === undefined && Date.now() < deadline; ) {
      const events = await api<Array<{ status: string; request?: { error?: string } }>>(
        "GET",
        `/apps/${APP}/machines/${m.id}/events`,
      );
      reason = events.find((e) => e.status === "failed")?.request?.error;
      if (reason === undefined) await sleep(250);
    }
    expect(reason).toContain(`file /config/x: app ${APP} has no deployed secret NOT_SET`);
  });

  it("with a guest_path that climbs out with .. are refused with a 400", async () => {
    const res = await p.api.call<{ error: string }>("POST", `/apps/${APP}/machines`, {
      config: helloConfig({ files: [{ guest_path: "/config/../../etc/passwd", raw_value: "eA==" }] }),
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toContain(
      "files.0.guest_path: expected an absolute path to a file, without empty, . or .. segments",
    );
  });
});

// Issue 13, acceptance 3: `hangar secrets set` rolls an app's machines (three, behind the edge proxy)
// onto the new value while clients keep sending requests through the proxy, with no failed request,
// and every machine ends with the new value in its environment. `--stage` leaves the machines as they
// are (same machines, old value inside), and a following `hangar secrets deploy` or `hangar deploy`
// applies the staged value; `unset --detach` returns at once and the platform rolls the machines.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { helloDir, startTestPlatform, type TestPlatform, viaProxy } from "../platform/harness.js";
import { HeldLoad } from "../platform/held-load.js";

const APP = "secrets-roll";
const MACHINES = 3;
const ROLL_TIMEOUT_MS = 180_000;

let p: TestPlatform;
let work: string;

interface Machine {
  id: string;
  state: string;
  config: Record<string, unknown>;
}

function hangar(args: string[], timeoutMs = ROLL_TIMEOUT_MS) {
  return runHangar(args, { cwd: work, env: { HANGAR_HOME: p.home }, timeoutMs });
}

/** The app's machines that are not going away. */
async function machines(): Promise<Machine[]> {
  const all = await p.api.ok<Machine[]>("GET", `/apps/${APP}/machines`);
  return all.filter((m) => m.state !== "destroying" && m.state !== "destroyed");
}

/**
 * GREETING as each started machine's environment has it, read inside with exec. A machine the roll is
 * starting or stopping (exec answers 412 failed_precondition) is left out: the callers count machines.
 */
async function greetings(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const m of await machines()) {
    const res = await p.api.call<{ stdout: string }>("POST", `/apps/${APP}/machines/${m.id}/exec`, {
      command: ["printenv", "GREETING"],
      timeout: 20,
    });
    if (res.status === 412) continue;
    if (res.status >= 300) throw new Error(`exec in ${m.id}: ${res.status} ${JSON.stringify(res.body)}`);
    out.set(m.id, res.body.stdout.trim());
  }
  return out;
}

/** Runs a CLI command under steady load through the proxy; returns the load's answers and what it printed. */
async function underLoad(args: string[]): Promise<{ load: HeldLoad; stdout: string }> {
  const load = new HeldLoad({ proxyPort: p.proxyPort, app: APP, clients: 4, holdMs: 20 });
  let stdout = "";
  try {
    const run = await hangar(args);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    stdout = run.stdout;
  } finally {
    await load.stop();
  }
  const failed = load.failures();
  process.stdout.write(
    `secrets roll: \`hangar ${args.join(" ")}\` under load: ${load.answers.length} requests, ${failed.length} failed, ` +
      `${load.machinesSince(0).size} machines answered\n`,
  );
  expect(failed.slice(0, 5)).toEqual([]);
  return { load, stdout };
}

beforeAll(async () => {
  p = await startTestPlatform();
  work = mkdtempSync(join(tmpdir(), "hangar-secrets-roll-"));
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  // The example as a dir: image (no build), checked on /healthz: a machine is healthy once it answers.
  writeFileSync(
    join(work, "hangar.toml"),
    [
      `app = "${APP}"`,
      "[build]",
      `image = "dir:${helloDir}"`,
      "[http_service]",
      "internal_port = 8080",
      'auto_stop_machines = "off"',
      "min_machines_running = 0",
      "[[http_service.checks]]",
      'interval = "1s"',
      'timeout = "1s"',
      'grace_period = "1s"',
      'method = "GET"',
      'path = "/healthz"',
      "",
    ].join("\n"),
  );
  await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
  const first = await hangar(["deploy"]);
  expect(first.code, first.stderr + first.stdout).toBe(0);
  // Two more machines of the release, so the next deploys replace three.
  const [one] = await machines();
  if (!one) throw new Error("the first deploy left no machine");
  for (let i = 1; i < MACHINES; i++) {
    const m = await p.api.ok<Machine>("POST", `/apps/${APP}/machines`, { config: one.config });
    await p.api.ok("GET", `/apps/${APP}/machines/${m.id}/wait?state=started&timeout=30`);
  }
}, ROLL_TIMEOUT_MS);

afterAll(async () => {
  await p?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("secrets set rolls the machines", () => {
  it(
    "onto the new value under steady load through the proxy, with no failed request",
    async () => {
      const before = new Set((await machines()).map((m) => m.id));
      expect(before.size).toBe(MACHINES);
      const { stdout } = await underLoad(["secrets", "set", "GREETING=rolled-1", "-a", APP]);
      // A rolling release the platform carries out, followed to its end.
      expect(stdout).toMatch(/is rolling out \(rolling\)[\s\S]*is live on 3 machine/);
      const after = await greetings();
      expect(after.size).toBe(MACHINES);
      for (const [id, value] of after) {
        expect(before.has(id), `machine ${id} is one of the roll's`).toBe(false);
        expect(value, `GREETING in machine ${id}`).toBe("rolled-1");
      }
      const answer = await viaProxy(p, APP);
      expect(JSON.parse(answer.body).hello).toBe("rolled-1");
    },
    ROLL_TIMEOUT_MS,
  );

  it(
    "not with --stage; a following hangar secrets deploy applies the staged value",
    async () => {
      const before = await greetings();
      const staged = await hangar(["secrets", "set", "GREETING=staged-2", "--stage", "-a", APP]);
      expect(staged.code, staged.stderr).toBe(0);
      const list = await hangar(["secrets", "list", "-a", APP, "--json"]);
      const listing = JSON.parse(list.stdout) as { secrets: Array<{ name: string; status: string }> };
      expect(listing.secrets).toEqual([expect.objectContaining({ name: "GREETING", status: "staged" })]);
      expect(await greetings()).toEqual(before);

      await underLoad(["secrets", "deploy", "-a", APP]);
      const after = await greetings();
      expect(after.size).toBe(MACHINES);
      for (const [id, value] of after) expect(value, `GREETING in machine ${id}`).toBe("staged-2");
    },
    ROLL_TIMEOUT_MS,
  );

  it(
    "and hangar deploy applies staged secrets before it rolls",
    async () => {
      const staged = await hangar(["secrets", "set", "GREETING=staged-3", "--stage", "-a", APP]);
      expect(staged.code, staged.stderr).toBe(0);
      const { load } = await underLoad(["deploy"]);
      expect(load.answers.length).toBeGreaterThan(0);
      const after = await greetings();
      for (const [id, value] of after) expect(value, `GREETING in machine ${id}`).toBe("staged-3");
      const list = await hangar(["secrets", "list", "-a", APP, "--json"]);
      expect(JSON.parse(list.stdout).secrets).toEqual([
        expect.objectContaining({ name: "GREETING", status: "deployed" }),
      ]);
    },
    ROLL_TIMEOUT_MS,
  );

  it(
    "unset --detach returns at once and the platform rolls the machines",
    async () => {
      const before = new Set((await machines()).map((m) => m.id));
      const unset = await hangar(["secrets", "unset", "GREETING", "--detach", "-a", APP, "--json"]);
      expect(unset.code, unset.stderr).toBe(0);
      const out = JSON.parse(unset.stdout) as {
        secrets: unknown[];
        rolled: { release: number; detached: boolean };
      };
      expect(out.secrets).toEqual([]);
      expect(out.rolled).toMatchObject({ detached: true });
      expect(out.rolled.release).toBeGreaterThan(0);
      // The platform's roll replaces every machine; the new ones have no GREETING.
      const deadline = Date.now() + ROLL_TIMEOUT_MS / 2;
      for (;;) {
        const now = await greetings();
        const replaced = [...now.keys()].every((id) => !before.has(id));
        if (now.size === MACHINES && replaced && [...now.values()].every((v) => v === "")) break;
        if (Date.now() > deadline)
          throw new Error(`machines after the platform's roll: ${JSON.stringify([...now])}`);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    },
    ROLL_TIMEOUT_MS,
  );
});

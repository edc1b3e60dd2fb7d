// `hangar logs` end to end (acceptance 5): a machine of a real platform prints lines; the real CLI
// process reads them through the gateway (never NATS) with the API token: the recent lines the host
// agent kept, then a new line while following; --no-tail exits with the recent lines; without a
// token it is refused. The machine prints what the test appends to a file (tail -F), so the test
// knows when a line was printed and measures how long it took to reach the CLI's output.
import { appendFileSync, chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningCli, runHangar, startHangar } from "../../cli/test/run-cli.js";
import { startTestPlatform, type TestPlatform } from "./harness.js";

let p: TestPlatform;
let printer: string;
let input: string;
const running: RunningCli[] = [];
const app = "logsapp";

beforeAll(async () => {
  // The machine's dir: image: the one folder this platform lets dir: images run from.
  printer = mkdtempSync(join(tmpdir(), "hangar-logs-printer-"));
  chmodSync(printer, 0o755);
  input = join(printer, "input");
  writeFileSync(input, "first line\nsecond line\n", { mode: 0o644 });
  p = await startTestPlatform({ dirImageRoots: [printer] });
}, 120_000);

afterAll(async () => {
  for (const cli of running) if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
  await p?.close();
  if (printer) rmSync(printer, { recursive: true, force: true });
});

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const cliEnv = (token?: string) => ({
  HANGAR_HOME: join(p.home, "no-local-json"),
  HANGAR_API_URL: p.apiUrl,
  ...(token === undefined ? {} : { HANGAR_API_TOKEN: token }),
});

describe("hangar logs through the gateway", () => {
  let machineId = "";

  it("a machine prints lines that its host keeps", async () => {
    expect((await p.api.call("POST", "/apps", { app_name: app, org_slug: "personal" })).status).toBe(201);
    const m = await p.api.ok<{ id: string }>("POST", `/apps/${app}/machines`, {
      config: {
        image: `dir:${printer}`,
        guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 },
        init: { exec: ["tail", "-n", "+1", "-F", input] },
      },
    });
    machineId = m.id;
    const wait = await p.api.call("GET", `/apps/${app}/machines/${machineId}/wait?state=started&timeout=30`);
    expect(wait.status, JSON.stringify(wait.body)).toBe(200);
    // The recent lines come from the host's kept log: ask until it has both.
    const deadline = Date.now() + 15_000;
    let res = await runHangar(["logs", "-a", app, "--no-tail"], { env: cliEnv(p.token) });
    while (!res.stdout.includes("second line") && Date.now() < deadline) {
      await sleep(200);
      res = await runHangar(["logs", "-a", app, "--no-tail"], { env: cliEnv(p.token) });
    }
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^\\S+Z app\\[${machineId}\\] local \\[info\\] first line$`));
    expect(lines[1]).toMatch(/ second line$/);
  });

  it("shows the recent lines, then a new line while following, and measures how long it took", async () => {
    const cli = startHangar(["logs", "-a", app], { env: cliEnv(p.token), timeoutMs: 60_000 });
    running.push(cli);
    await until(() => cli.output().stdout.includes("second line"), "the recent lines");
    // The gateway subscribed before it asked the host: a line printed now is followed, once.
    const printedAt = performance.now();
    appendFileSync(input, "third line\n");
    await until(() => cli.output().stdout.includes("third line"), "the followed line");
    const latencyMs = performance.now() - printedAt;
    console.log(
      `[logs.e2e] a line appended to the machine's input reached \`hangar logs\` output in ${latencyMs.toFixed(1)} ms ` +
        "(machine's tail -F -> host agent's log tail -> NATS -> gateway -> CLI, measured in the test process)",
    );
    const lines = cli.output().stdout.trim().split("\n");
    expect(lines.map((l) => l.replace(/^.* \[info\] /, ""))).toEqual([
      "first line",
      "second line",
      "third line",
    ]);
    cli.child.kill("SIGINT");
    expect((await cli.exited).code).toBe(0);
  });

  it("--no-tail exits 0 with the recent lines, filtered by machine and region, as JSON when asked", async () => {
    const res = await runHangar(["logs", "-a", app, "--no-tail", "-m", machineId, "-r", "local", "--json"], {
      env: cliEnv(p.token),
    });
    expect(res.code, res.stderr).toBe(0);
    const entries = res.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { message: string; instance: string; region: string });
    expect(entries.map((e) => e.message)).toEqual(["first line", "second line", "third line"]);
    expect(entries.every((e) => e.instance === machineId && e.region === "local")).toBe(true);
    const otherRegion = await runHangar(["logs", "-a", app, "--no-tail", "-r", "elsewhere"], {
      env: cliEnv(p.token),
    });
    expect(otherRegion.code).toBe(0);
    expect(otherRegion.stdout).toBe("");
  });

  it("without a token, or with a wrong one, it is refused with a clear message", async () => {
    const none = await runHangar(["logs", "-a", app], { env: cliEnv() });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain("no API token");
    const wrong = await runHangar(["logs", "-a", app], { env: cliEnv("not-the-token") });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("malformed token");
    const raw = await p.api.call("GET", `/apps/${app}/logs?no_tail=true`, undefined, { token: null });
    expect(raw.status).toBe(401);
    expect(raw.body).toEqual({
      error: "missing Authorization: Bearer <token> header",
      status: "unauthenticated",
    });
    const unknown = await runHangar(["logs", "-a", "nope", "--no-tail"], { env: cliEnv(p.token) });
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("app nope not found");
  });
});

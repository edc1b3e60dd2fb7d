// runService in a real process against its own nats-server (this file kills it, so it does not use
// the shared one): /health follows the NATS connection, bad settings stop the process, SIGTERM
// stops it in order.
import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort, type NatsServer, startNatsServer } from "@hangar/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const probe = fileURLToPath(new URL("./fixtures/probe-service.ts", import.meta.url));
let nats: NatsServer;
const children: ChildProcess[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
});

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await nats?.stop();
});

function startProbe(env: Record<string, string>): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", probe], {
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function health(url: string): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  return fetch(url, { signal: AbortSignal.timeout(1_000) }).then(
    async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }),
    () => undefined,
  );
}

/** Polls /health until it answers with `status`; fails with the last answer and the service's output. */
async function healthBecomes(url: string, status: number, output: () => string) {
  let last: Awaited<ReturnType<typeof health>>;
  for (let i = 0; i < 300; i++) {
    last = await health(url);
    if (last?.status === status) return last.body;
    await sleep(100);
  }
  throw new Error(`/health never answered ${status}; last ${JSON.stringify(last)}; output:\n${output()}`);
}

describe("runService", () => {
  it("says not ready on /health while nats-server is down, and ready again once it is back", async () => {
    const opsPort = await freePort();
    const url = `http://127.0.0.1:${opsPort}/health`;
    const { output } = startProbe({ HANGAR_NATS_URL: nats.url, HANGAR_PROBE_OPS_PORT: String(opsPort) });
    expect(await healthBecomes(url, 200, output)).toMatchObject({
      service: "probe",
      ok: true,
      probe: "here",
      replayed: true,
      nats: "connected",
    });

    await nats.kill("SIGKILL");
    expect(await healthBecomes(url, 503, output)).toMatchObject({ ok: false, nats: "disconnected" });

    await nats.restart();
    expect(await healthBecomes(url, 200, output)).toMatchObject({ ok: true, nats: "connected" });
  });

  it("says the step of a start under way on /health, and is ready once the start is done", async () => {
    const opsPort = await freePort();
    const url = `http://127.0.0.1:${opsPort}/health`;
    const held = startProbe({
      HANGAR_NATS_URL: nats.url,
      HANGAR_PROBE_OPS_PORT: String(opsPort),
      PROBE_HOLD_START: "1",
    });
    expect(await healthBecomes(url, 503, held.output)).toMatchObject({
      ok: false,
      replayed: false,
      starting: "waiting for SIGUSR2",
    });
    held.child.kill("SIGUSR2");
    const ready = await healthBecomes(url, 200, held.output);
    expect(ready).toMatchObject({ ok: true, probe: "here" });
    expect(ready).not.toHaveProperty("starting");
  });

  it("stops the service, then everything else, on SIGTERM, and exits 0", async () => {
    const opsPort = await freePort();
    const probeRun = startProbe({ HANGAR_NATS_URL: nats.url, HANGAR_PROBE_OPS_PORT: String(opsPort) });
    await healthBecomes(`http://127.0.0.1:${opsPort}/health`, 200, probeRun.output);
    probeRun.child.kill("SIGTERM");
    expect(await probeRun.exited).toBe(0);
    expect(probeRun.output()).toContain("probe stopped");
    expect(await health(`http://127.0.0.1:${opsPort}/health`)).toBeUndefined();
  });

  it("refuses to start with a bad setting, naming it", async () => {
    const bad = startProbe({ HANGAR_NATS_URL: nats.url, HANGAR_STREAM_REPLICAS: "three" });
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/hangar-probe: bad settings\n {2}HANGAR_STREAM_REPLICAS="three": /);
  });

  it("reads a setting's old name, and logs a warning naming the new one", async () => {
    const opsPort = await freePort();
    const old = startProbe({ HANGAR_NATS_URL: nats.url, HANGAR_PROBE_PORT: String(opsPort) });
    await healthBecomes(`http://127.0.0.1:${opsPort}/health`, 200, old.output);
    expect(old.output()).toContain("HANGAR_PROBE_PORT is deprecated: set HANGAR_PROBE_OPS_PORT instead");
  });
});

// `npm start`'s launcher (scripts/start.ts) in a temp HANGAR_HOME on free ports: it starts
// nats-server, Postgres (the postgres manager's read model) and every service, writes local.json, serves
// the `hangar` CLI's commands, and stops cleanly on SIGTERM.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { natsAuthOptions, OPERATOR_USER } from "@hangar/service";
import { createNetworkTopology, type NetworkTopology } from "@hangar/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import { AuthorizationError, connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { runHangar, startHangar } from "../../cli/test/run-cli.js";
import { removeStateDir } from "../../services/host-agent/test/harness.js";
import { NpmStart, npmStartEnv } from "./npm-start.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const home = mkdtempSync(join(tmpdir(), "hangar-home-"));
// As root, Postgres runs as the postgres user, which must be able to enter HANGAR_PG_DATA's parents.
chmodSync(home, 0o755);
let run: NpmStart | undefined;
// The host agent's network (machine routes, firewall) lives in a namespace of this test's own.
let topology: NetworkTopology | undefined;

/** The topology's one host, made on first use. */
async function host(): Promise<NetworkTopology["hosts"][0]> {
  topology ??= await createNetworkTopology({ hosts: 1 });
  return topology.hosts[0] as NetworkTopology["hosts"][0];
}

afterAll(async () => {
  await run?.stop();
  // The machines npm start left (they outlive it, for the next one to adopt): killed, unmounted.
  await removeStateDir(join(home, "hosts"));
  await topology?.close();
  rmSync(home, { recursive: true, force: true });
});

describe("npm start (the local platform launcher)", () => {
  it("starts the whole platform under HANGAR_HOME, serves the hangar CLI, and stops everything on SIGTERM", async () => {
    const env = await npmStartEnv(home, await host());
    run = new NpmStart(env);
    const localJson = join(home, "local.json");
    await run.running();
    const local = JSON.parse(readFileSync(localJson, "utf8"));
    expect(local.nats_url).toBe(`nats://127.0.0.1:${env.HANGAR_NATS_PORT}`);
    expect(local.api_url).toBe(`http://127.0.0.1:${env.HANGAR_GATEWAY_PORT}`);
    expect(local.proxy_url).toBe(`http://localhost:${env.HANGAR_PROXY_PORT}`);
    // The CLI's token is the personal org's admin token; the operator's (every org) is beside it.
    expect(local.token).toMatch(/^hm2_/);
    expect(local.operator_token).toMatch(/^hm2_/);
    expect(run.output).not.toContain(local.token);
    const whoami = await fetch(`${local.api_url}/v1/auth/whoami`, {
      headers: { authorization: `Bearer ${local.token}` },
    });
    expect(await whoami.json()).toMatchObject({ kind: "org", org: "personal", apps: null, read_only: false });

    // NATS admits only the platform's users: the operator's seed file is beside nats_url.
    expect(local.nats_creds).toBe(join(home, "nats", "creds", `${OPERATOR_USER}.nk`));
    await expect(connect({ servers: local.nats_url, reconnect: false })).rejects.toBeInstanceOf(
      AuthorizationError,
    );
    const nc = await connect({
      servers: local.nats_url,
      ...natsAuthOptions({ credsFile: local.nats_creds, user: OPERATOR_USER }),
    });
    const jsm = await jetstreamManager(nc);
    const names = (await jsm.streams.names().next()).sort();
    expect(names).toEqual(expect.arrayContaining(["APPS", "HOSTS", "MACHINES"]));
    await nc.close();

    // The postgres manager keeps its read model there (POSTGRES_SERVICES), so npm start runs
    // Postgres with a password of its own, kept beside local.json.
    expect(local.database_url).toMatch(/^postgres(ql)?:\/\/.+@127\.0\.0\.1:\d+\/hangar$/);
    expect(run.output).toContain("[hangar] postgres");
    expect(existsSync(join(home, "postgres-password"))).toBe(true);

    await cliAgainstPlatform(home, local);

    expect(await run.stop()).toBe(0);
    expect(run.output).toContain("[hangar] stopped");
    // Stopping the platform stopped its machines too.
    expect(machineProcesses()).toEqual([]);

    // A second start reuses the same data and token.
    run = new NpmStart(env);
    await run.running(60_000);
    expect(JSON.parse(readFileSync(localJson, "utf8")).token).toBe(local.token);
    expect(await run.stop()).toBe(0);
  }, 180_000);

  it("says which variable to set when a port is taken", async () => {
    const net = await import("node:net");
    const blocker = net.createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => blocker.once("listening", resolve));
    const port = (blocker.address() as { port: number }).port;
    const taken = new NpmStart({
      ...(await npmStartEnv(join(home, "taken"), await host())),
      HANGAR_NATS_PORT: String(port),
    });
    expect(await taken.exited()).toBe(1);
    blocker.close();
    expect(taken.output).toMatch(/could not start/);
    expect(taken.output).toMatch(/HANGAR_NATS_PORT/);
  });
});

/** Pids of machine processes (they carry FLY_MACHINE_ID) of this test's app. */
function machineProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, "utf8");
      if (env.includes("FLY_APP_NAME=cli-web\0") && env.includes("FLY_MACHINE_ID=")) pids.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return pids;
}

/** The `hangar` CLI against the running platform, configured by local.json alone. */
async function cliAgainstPlatform(
  home: string,
  local: { api_url: string; proxy_url: string; token: string },
) {
  const cli = (args: string[]) => runHangar(args, { env: { HANGAR_HOME: home }, timeoutMs: 60_000 });
  const ok = async (args: string[]) => {
    const r = await cli(args);
    expect(r.code, `hangar ${args.join(" ")}: ${r.stderr}`).toBe(0);
    return r;
  };
  await ok(["apps", "create", "cli-web"]);
  const apps = JSON.parse((await ok(["apps", "list", "--json"])).stdout);
  expect(JSON.stringify(apps)).toContain("cli-web");

  const logs = startHangar(["logs", "-a", "cli-web"], { env: { HANGAR_HOME: home }, timeoutMs: 60_000 });
  const run = JSON.parse(
    // -p: a service on the app's port (without one, as on Fly, the proxy routes nothing to it).
    (await ok(["machine", "run", join(root, "examples", "hello"), "-a", "cli-web", "-p", "8080", "--json"]))
      .stdout,
  );
  expect(run.id).toMatch(/^[0-9a-f]{14}$/);
  const list = JSON.parse((await ok(["machine", "list", "-a", "cli-web", "--json"])).stdout) as Array<{
    id: string;
    state: string;
  }>;
  expect(list.map((m) => [m.id, m.state])).toEqual([[run.id, "started"]]);
  const status = JSON.parse((await ok(["status", "-a", "cli-web", "--json"])).stdout);
  expect(JSON.stringify(status)).toContain(run.id);
  const machine = JSON.parse((await ok(["machine", "status", run.id, "-a", "cli-web", "--json"])).stdout);
  expect(machine.state ?? machine.machine?.state).toBe("started");

  // The app answers through the proxy named in local.json.
  const port = new URL(local.proxy_url).port;
  const body = await new Promise<string>((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, path: "/", headers: { host: `cli-web.localhost:${port}` } },
      (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => resolve(text));
      },
    );
    req.on("error", reject);
    req.end();
  });
  expect(JSON.parse(body).machine_id).toBe(run.id);

  // The machine's output reaches `hangar logs` through the gateway.
  await ok(["machine", "restart", run.id, "-a", "cli-web"]);
  for (let i = 0; i < 100 && !logs.output().stdout.includes("hello listening"); i++) await sleep(100);
  logs.child.kill("SIGINT");
  await logs.exited;
  expect(logs.output().stdout).toContain("hello listening");

  await ok(["machine", "stop", run.id, "-a", "cli-web"]);
  const stopped = JSON.parse((await ok(["machine", "list", "-a", "cli-web", "--json"])).stdout) as Array<{
    state: string;
  }>;
  expect(stopped[0]?.state).toBe("stopped");
  await ok(["machine", "start", run.id, "-a", "cli-web"]);

  // A wrong token says how to fix it, and fails.
  const refused = await runHangar(["apps", "list"], {
    env: { HANGAR_API_URL: local.api_url, HANGAR_API_TOKEN: "wrong" },
  });
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/token/i);
  expect(refused.stderr).toMatch(/HANGAR_API_TOKEN|local\.json/);
}

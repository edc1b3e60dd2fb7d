// `npm start`: runs the whole local platform under $HANGAR_HOME (default ~/.hangar): nats-server
// with JetStream on disk, Postgres (with a password) once a service uses it, the event streams, and
// every service as its own process (placement, one host agent, the gateway on 4280, the proxy on
// 8080, the monitor on 4290). Whatever it started and dies is restarted with backoff, and logged.
// Writes $HANGAR_HOME/local.json for the CLI and tools, and stops everything on Ctrl-C or SIGTERM.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mintToken, verifyToken } from "@hangar/auth";
import {
  appsStream,
  auditStream,
  buildsStream,
  hostsStream,
  machinesStream,
  orgsStream,
  pgclustersStream,
  releasesStream,
  scalingStream,
  secretsStream,
  volumesStream,
} from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { OPERATOR_USER, partlySharedSettings } from "@hangar/service";
import {
  freePort,
  type NatsServer,
  type PostgresServer,
  startNatsServer,
  startPostgres,
} from "@hangar/testkit";
import {
  connectOperator,
  type Platform,
  type PlatformOptions,
  POSTGRES_SERVICES,
  platformNatsCredentials,
  repoRoot,
  SERVICES,
  startPlatform,
} from "./platform.js";
import { type Supervisable, type Supervision, supervise } from "./supervisor.js";

const home = process.env.HANGAR_HOME ?? join(homedir(), ".hangar");
const natsPort = Number(process.env.HANGAR_NATS_PORT ?? 4222);
const pgPort = Number(process.env.HANGAR_PG_PORT ?? 5433);
const gatewayPort = Number(process.env.HANGAR_GATEWAY_PORT ?? 4280);
const proxyPort = Number(process.env.HANGAR_PROXY_PORT ?? 8080);
const monitorPort = Number(process.env.HANGAR_MONITOR_OPS_PORT ?? 4290);
// Postgres runs as the `postgres` user when we are root, and that user cannot enter /root.
const pgData =
  process.env.HANGAR_PG_DATA ??
  (process.getuid?.() === 0 ? "/var/lib/hangar/postgres" : join(home, "postgres"));

function say(line: string): void {
  process.stdout.write(`[hangar] ${line}\n`);
}

/** A random secret kept (0600) in $HANGAR_HOME/<name>, made on first use. */
async function secret(name: string): Promise<string> {
  const file = join(home, name);
  if (existsSync(file)) return (await readFile(file, "utf8")).trim();
  const t = randomBytes(24).toString("base64url");
  await writeFile(file, `${t}\n`, { mode: 0o600 });
  return t;
}

/** The API tokens' root key ($HANGAR_HOME/token-key, 32 random bytes in base64, 0600), made on first use. */
async function tokenKey(): Promise<string> {
  const file = join(home, "token-key");
  if (!existsSync(file)) await writeFile(file, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
  return (await readFile(file, "utf8")).trim();
}

/**
 * The token local.json hands the CLI: an admin token of the `personal` org, kept in $HANGAR_HOME/token.
 * The org and the token are made through the API on first start (the org only if missing), and again
 * when the kept token no longer verifies (another key, or one kept from before tokens were macaroons).
 */
async function personalToken(apiUrl: string, key: Uint8Array, operator: string): Promise<string> {
  const file = join(home, "token");
  if (existsSync(file)) {
    const kept = (await readFile(file, "utf8")).trim();
    try {
      verifyToken(key, kept, Date.now());
      const whoami = await fetch(`${apiUrl}/v1/auth/whoami`, {
        headers: { authorization: `Bearer ${kept}` },
      });
      if (whoami.ok) return kept;
    } catch {
      // Not a token of this key: mint a new one below.
    }
  }
  const call = async (method: string, path: string, body: unknown) => {
    const res = await fetch(`${apiUrl}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${operator}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { token?: string; error?: string } };
  };
  let res = await call("POST", "/orgs", { slug: "personal", name: "personal" });
  if (res.status === 409)
    res = await call("POST", "/tokens", { kind: "org", org: "personal", name: "npm start" });
  if (res.status !== 201 || res.body.token === undefined) {
    throw new Error(`could not make the personal org's admin token: ${res.status} ${res.body.error ?? ""}`);
  }
  await writeFile(file, `${res.body.token}\n`, { mode: 0o600 });
  return res.body.token;
}

/** The secrets master key's file ($HANGAR_HOME/secrets-key, 32 random bytes in base64, 0600), made on first use. */
async function secretsKeyFile(): Promise<string> {
  const file = join(home, "secrets-key");
  if (!existsSync(file)) await writeFile(file, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
  return file;
}

async function main(): Promise<void> {
  await mkdir(home, { recursive: true });
  let nats: NatsServer | undefined;
  let pg: PostgresServer | undefined;
  let platform: Platform | undefined;
  let stopping = false;
  const supervisions: Supervision[] = [];
  const watch = (name: string, target: Supervisable, onRestart?: () => void) =>
    supervisions.push(supervise(name, target, { log: say, onRestart }));
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say("stopping");
    // First, so that what is stopped below is not taken for a crash and started again.
    await Promise.all(supervisions.map((s) => s.stop()));
    await platform?.stop();
    await Promise.allSettled([pg?.stop(), nats?.stop()]);
    say("stopped");
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));
  try {
    // Only the platform's users get in, each with its own permissions (docs/nats-security.md).
    const natsCreds = await platformNatsCredentials(home);
    nats = await startNatsServer({
      storeDir: join(home, "nats"),
      port: natsPort,
      name: "hangar-local",
      authorization: natsCreds.authorization,
    });
    say(`nats-server ${nats.url} (pid ${nats.pid}, JetStream in ${nats.storeDir})`);
    // The services reconnect on their own; say when they all are ready again.
    watch("nats-server", nats, () => void (platform && sayWhenReady(platform, "nats-server")));
    let databaseUrl: string | undefined;
    if (POSTGRES_SERVICES.length > 0) {
      await mkdir(pgData, { recursive: true });
      if (pgData.startsWith("/var/lib/hangar")) await chmod("/var/lib/hangar", 0o755);
      pg = await startPostgres({
        dataDir: pgData,
        port: pgPort,
        password: await secret("postgres-password"),
      });
      watch("postgres", pg);
      const server = pg;
      databaseUrl = await server.createDatabase("hangar").catch(async (err: Error) => {
        if (!/already exists/.test(err.message)) throw err;
        return server.url.replace(/\/postgres$/, "/hangar");
      });
      say(
        `postgres 127.0.0.1:${server.port}, database hangar (pid ${server.pid}, data in ${pgData}, password in ${join(home, "postgres-password")})`,
      );
    }

    const streams = [
      appsStream,
      machinesStream,
      hostsStream,
      buildsStream,
      releasesStream,
      scalingStream,
      auditStream,
      secretsStream,
      orgsStream,
      volumesStream,
      pgclustersStream,
    ];
    const nc = await connectOperator(nats.url, natsCreds, "hangar-start");
    const store = await EventStore.connect(nc);
    for (const stream of streams) await ensureStream(store.jsm, stream);
    store.close();
    await nc.close();
    say(`streams ${streams.map((s) => s.name).join(", ")} ready`);

    const key = await tokenKey();
    // The operator's token (every org) is minted offline from the key; its fixed id makes it the same
    // token on every start, so what a script saved keeps working.
    const operatorToken = mintToken(new Uint8Array(Buffer.from(key, "base64")), {
      id: "tok_operator",
      kind: "operator",
    });
    const dirImageRoots = localDirImageRoots();
    say(
      dirImageRoots.length > 0
        ? `dir: images run from ${dirImageRoots.join(", ")} (HANGAR_DIR_IMAGE_ROOTS)`
        : "dir: images are off (HANGAR_DIR_IMAGE_ROOTS is empty)",
    );
    say(
      "starting services: placement, host agent, volume, postgres manager, webhooks, builder, gateway, proxy, scheduler, monitor",
    );
    platform = await startPlatform({
      home,
      natsUrl: nats.url,
      natsCreds,
      tokenKey: key,
      gatewayPort,
      proxyPort,
      monitorPort,
      placementOpsPort: await freePort(),
      hostOpsPort: await freePort(),
      proxyOpsPort: await freePort(),
      dirImageRoots,
      secretsKeyFile: await secretsKeyFile(),
      env: serviceEnv(databaseUrl),
    });
    for (const name of SERVICES) watch(name, platform.services[name]);
    const apiToken = await personalToken(
      platform.apiUrl,
      new Uint8Array(Buffer.from(key, "base64")),
      operatorToken,
    );
    const local = {
      api_url: platform.apiUrl,
      proxy_url: platform.proxyUrl,
      nats_url: nats.url,
      nats_creds: natsCreds.credsFile(OPERATOR_USER),
      token: apiToken,
      operator_token: operatorToken,
      ...(databaseUrl === undefined ? {} : { database_url: databaseUrl }),
      monitor_url: platform.monitorUrl,
    };
    await writeFile(join(home, "local.json"), `${JSON.stringify(local, null, 2)}\n`, { mode: 0o600 });
    say(`Machines API  ${platform.apiUrl}/v1   (personal org admin token in local.json; operator token too)`);
    say(`proxy         http://<app>.localhost:${proxyPort}`);
    say(`monitor       ${platform.monitorUrl}/metrics`);
    say(`logs          ${join(home, "logs")}`);
    say(`wrote ${join(home, "local.json")}; the hangar CLI (cli/bin/hangar) reads it`);
    say("running; Ctrl-C stops everything");
  } catch (err) {
    process.stderr.write(`[hangar] could not start: ${err instanceof Error ? err.message : String(err)}\n`);
    if (/address already in use|EADDRINUSE/i.test(String(err))) {
      process.stderr.write(
        "[hangar] a port is taken: set HANGAR_NATS_PORT, HANGAR_PG_PORT, HANGAR_GATEWAY_PORT, HANGAR_PROXY_PORT or HANGAR_MONITOR_OPS_PORT to free ones\n",
      );
    }
    if (/permission denied/i.test(String(err)) && process.getuid?.() === 0) {
      process.stderr.write(
        `[hangar] as root, Postgres runs as the postgres user: ${pgData} and every folder above it must be enterable by it (chmod o+x), or set HANGAR_PG_DATA elsewhere\n`,
      );
    }
    await stop(1);
  }
}

/** Says, once every service's /health is ok again (or after a minute, which are not), how long it took. */
async function sayWhenReady(platform: Platform, after: string): Promise<void> {
  const since = Date.now();
  const waiting = new Set(SERVICES);
  while (waiting.size > 0 && Date.now() - since < 60_000) {
    for (const name of waiting) {
      const ok = await fetch(platform.services[name].healthUrl, { signal: AbortSignal.timeout(1_000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) waiting.delete(name);
    }
    if (waiting.size > 0) await sleep(100);
  }
  const took = `${Date.now() - since} ms after ${after} restarted`;
  say(
    waiting.size === 0
      ? `every service is ready again, ${took}`
      : `not ready ${took}: ${[...waiting].join(", ")}`,
  );
}

/**
 * The folders whose dir: images npm start runs. A local development platform runs the repo's
 * examples (the README's quick start runs examples/hello as a dir: image); HANGAR_DIR_IMAGE_ROOTS
 * set in the environment replaces them, and set empty turns dir: images off.
 */
function localDirImageRoots(): string[] {
  const value = process.env.HANGAR_DIR_IMAGE_ROOTS ?? join(repoRoot, "examples");
  const parsed = partlySharedSettings.HANGAR_DIR_IMAGE_ROOTS.safeParse(value);
  if (!parsed.success)
    throw new Error(`HANGAR_DIR_IMAGE_ROOTS=${JSON.stringify(value)}: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** What npm start adds to the services' environments. */
function serviceEnv(databaseUrl: string | undefined): PlatformOptions["env"] {
  // Stopping the platform stops its machines; the next start brings them back (restart policy).
  const env: PlatformOptions["env"] = { "host-agent": { HANGAR_HOST_AGENT_STOP_MACHINES: "1" } };
  if (databaseUrl !== undefined) {
    for (const name of POSTGRES_SERVICES) env[name] = { ...env[name], HANGAR_DATABASE_URL: databaseUrl };
  }
  return env;
}

await main();

// Issue 13, acceptance 6: what tokens and secrets cost.
// - plain_rps / authorized_rps: GET-machine requests a second through the gateway's HTTP stack
//   (request id, tracing, metrics, access log, the machine routes with their authorization checks,
//   an in-memory machine; tests/bench/auth-server.ts, in a process of its own) behind a static
//   bearer token compared by digest, and behind macaroon verification of a deploy token (org and app
//   caveats). Load: 16 keep-alive connections from this process, 20,000 requests a round after a
//   warm-up; 4 rounds alternating the two, the best of each reported. Target: authorized >= 0.9 x plain.
// - secret_inject_ms_p99: what opening an app's secrets adds to a machine start: the host agent's
//   AppSecrets.envFor, as a start calls it (one direct get of the app's last SECRETS sequence so
//   the host has folded every acknowledged change, then the app's sealed secrets from its folded
//   view, the data key unwrapped with the master key, 20 values decrypted) and the driver's env merge, p99 of 5,000
//   starts after 500 unmeasured ones, against a real nats-server holding the secrets the gateway's
//   secrets backend wrote. Target: < 5 ms.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { secretsStream } from "@hangar/domain";
import { EventStore, ensureStream } from "@hangar/eventstore";
import { loadMasterKeys } from "@hangar/secrets";
import { createLogger } from "@hangar/telemetry";
import { startNatsServer } from "@hangar/testkit";
import { connect } from "@nats-io/transport-node";
import { AppSecrets } from "../../libs/service/src/app-secrets.js";
import { StreamSecretsBackend } from "../../services/gateway/src/secrets/backend.js";
import { measure } from "../../services/proxy/test/load.js";
import { percentile, printTable, round } from "./stats.js";

const ROUNDS = 4;
const LOAD = { requests: 20_000, concurrency: 16 };
const SECRETS = 20;
const STARTS = 5_000;
const WARMUP_STARTS = 500;

interface Servers {
  plain: string;
  authorized: string;
  path: string;
  plainToken: string;
  authorizedToken: string;
}

/** GET-machine requests a second, plain and authorized, best of ROUNDS alternating rounds. */
async function requestRates(): Promise<{ plain: number; authorized: number }> {
  const server = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", new URL("./auth-server.ts", import.meta.url).pathname],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  try {
    const [line] = (await once(createInterface({ input: server.stdout }), "line")) as [string];
    const s = JSON.parse(line) as Servers;
    const target = {
      plain: { url: s.plain, token: s.plainToken },
      authorized: { url: s.authorized, token: s.authorizedToken },
    };
    const best = { plain: 0, authorized: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternating, so a slow moment of the machine does not fall on one side only.
      const order = round % 2 === 0 ? (["plain", "authorized"] as const) : (["authorized", "plain"] as const);
      for (const side of order) {
        const { url, token } = target[side];
        const m = await measure({
          url: `${url}${s.path}`,
          headers: { authorization: `Bearer ${token}` },
          ...LOAD,
        });
        best[side] = Math.max(best[side], m.rps);
      }
    }
    return best;
  } finally {
    server.kill("SIGTERM");
  }
}

/** Milliseconds each of STARTS machine starts spends opening the app's SECRETS secrets into its env. */
async function secretInjectTimes(): Promise<number[]> {
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const store = await EventStore.connect(nc);
  try {
    await ensureStream(store.jsm, secretsStream);
    const keys = loadMasterKeys({ key: randomBytes(32).toString("base64") });
    const logger = createLogger("bench", { level: "warn" });
    const gateway = await StreamSecretsBackend.start(store, keys, logger);
    const values = Object.fromEntries(
      Array.from({ length: SECRETS }, (_, i) => [`SECRET_${i}`, randomBytes(24).toString("base64url")]),
    );
    const ctx = { requestId: "bench", leaseNonce: undefined, signal: new AbortController().signal };
    await gateway.update({ kind: "app", name: "bench" }, { values, stage: false }, ctx);
    await gateway.stop();
    const host = await AppSecrets.start(store, keys);
    // The host agent's view follows the stream: wait until it holds what the gateway wrote.
    while (Object.keys(host.envOf("bench")).length < SECRETS) await new Promise((r) => setTimeout(r, 10));
    const configEnv = { PATH: "/usr/bin:/bin", APP_ENV: "production", FLY_APP_NAME: "bench" };
    const times: number[] = [];
    for (let i = 0; i < WARMUP_STARTS + STARTS; i++) {
      const t0 = performance.now();
      const env = { ...configEnv, ...(await host.envFor("bench")), PORT: "8080" };
      const ms = performance.now() - t0;
      if (Object.keys(env).length !== SECRETS + 4) throw new Error("the secrets did not all reach the env");
      if (i >= WARMUP_STARTS) times.push(ms);
    }
    await host.stop();
    return times;
  } finally {
    store.close();
    await nc.close();
    await nats.stop();
  }
}

/** Runs the bench; the caller prints the JSON line. */
export async function run(): Promise<Record<string, unknown>> {
  const rates = await requestRates();
  const inject = await secretInjectTimes();
  const p99 = percentile(inject, 99);
  const ratio = rates.authorized / rates.plain;
  printTable([
    [
      "plain_rps",
      round(rates.plain),
      "GET machine behind a static bearer token (best of 4 rounds, 16 connections)",
    ],
    ["authorized_rps", round(rates.authorized), "the same behind macaroon verification of a deploy token"],
    ["authorized / plain", round(ratio, 3), `target >= 0.9: ${ratio >= 0.9 ? "met" : "NOT met"}`],
    [
      "secret_inject_ms_p50",
      round(percentile(inject, 50), 3),
      `${SECRETS} secrets: catch-up get + unwrap + decrypt + env`,
    ],
    [
      "secret_inject_ms_p99",
      round(p99, 3),
      `over ${STARTS} starts; target < 5: ${p99 < 5 ? "met" : "NOT met"}`,
    ],
  ]);
  return {
    plain_rps: round(rates.plain),
    authorized_rps: round(rates.authorized),
    secret_inject_ms_p99: round(p99, 3),
  };
}

// A gateway process alone, as npm start runs it (its own NATS user), on a nats-server of its own with
// the platform's users: for what needs the real API and the event feed but no machine to run
// (`pnpm bench events`, `hangar events`' test), at a fraction of a whole platform's start.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintToken } from "@hangar/auth";
import { EventStore } from "@hangar/eventstore";
import { freePort, type NatsServer, startNatsServer } from "@hangar/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectOperator, platformNatsCredentials, startGateway } from "../../scripts/platform.js";

export interface LoneGateway {
  apiUrl: string;
  /** An operator token (every org). */
  token: string;
  /** HANGAR_GATEWAY_TOKEN_KEY, to mint other tokens. */
  tokenKey: Uint8Array;
  nats: NatsServer;
  /** The operator's connection, and an event store on it: to append events as the services would. */
  nc: NatsConnection;
  store: EventStore;
  /** POST to the API as the operator; throws on an HTTP error. */
  post(path: string, body: unknown): Promise<unknown>;
  close(): Promise<void>;
}

export async function startLoneGateway(name: string): Promise<LoneGateway> {
  const home = mkdtempSync(join(tmpdir(), `hangar-${name}-`));
  const creds = await platformNatsCredentials(home);
  const nats = await startNatsServer({ storeDir: join(home, "nats"), authorization: creds.authorization });
  const tokenKey = new Uint8Array(randomBytes(32));
  const token = mintToken(tokenKey, { id: `tok_${name}_operator`, kind: "operator" });
  const gateway = await startGateway({
    home,
    natsUrl: nats.url,
    natsCreds: creds,
    tokenKey: Buffer.from(tokenKey).toString("base64"),
    gatewayPort: await freePort(),
    proxyPort: await freePort(),
    monitorPort: await freePort(),
    placementOpsPort: await freePort(),
    hostOpsPort: await freePort(),
    proxyOpsPort: await freePort(),
    logLevel: "warn",
    env: { gateway: { HANGAR_GATEWAY_RATE_LIMITS: "machine_get=1000000,app_create=1000000" } },
  }).catch(async (err: unknown) => {
    await nats.stop();
    throw err;
  });
  const nc = await connectOperator(nats.url, creds, name);
  const store = await EventStore.connect(nc);
  return {
    apiUrl: gateway.apiUrl,
    token,
    tokenKey,
    nats,
    nc,
    store,
    async post(path, body) {
      const res = await fetch(`${gateway.apiUrl}/v1${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`POST ${path}: HTTP ${res.status} ${text}`);
      return text === "" ? undefined : JSON.parse(text);
    },
    async close() {
      store.close();
      await nc.close();
      await gateway.stop();
      await nats.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

// An edge app's secrets as its `env`, on a real nats-server with the real runtime: the proxy opens the
// app's deployed secrets (sealed in SECRETS, as the gateway records them) with the master key and
// overlays them on the release's [env]; another app does not see them; a secrets change reaches the
// running code; a proxy without the master key refuses the app with a 5xx naming why.
import { createHash, randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { edgeBundleName } from "@hangar/config";
import {
  appSecretsId,
  appsStream,
  machinesStream,
  type ReleaseCommand,
  type ReleaseEvent,
  type ReleasesState,
  releaseDecider,
  releasesStream,
  type SecretsCommand,
  type SecretsEvent,
  type SecretsState,
  secretsDecider,
  secretsStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { MasterKeys, newDataKey, scopeOfApp } from "@hangar/secrets";
import { AppSecrets, sealSecrets, secretsDataKey } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { type ObjectStore, Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type RunningEdgeApps, startEdgeApps } from "../src/edge/mod.js";
import { createProxy, type EdgeProxy } from "../src/engine/mod.js";
import { StreamRouteTable } from "../src/routes/route-table.js";
import { send } from "./harness.js";

const suffix = randomBytes(4).toString("hex");
const streams = {
  apps: prefixedStream(appsStream, `proxysec${suffix}`),
  machines: prefixedStream(machinesStream, `proxysec${suffix}`),
  releases: prefixedStream(releasesStream, `proxysec${suffix}`),
  secrets: prefixedStream(secretsStream, `proxysec${suffix}`),
};
const bundlesBucket = `edgesecbundles${suffix}`;
const keys = new MasterKeys(newDataKey());
const logger = createLogger("proxy-edge-secrets-test", { level: "silent" });

let nc: NatsConnection;
let store: EventStore;
let bucket: ObjectStore;
let releaseHandler: CommandHandler<ReleasesState, ReleaseCommand, ReleaseEvent>;
let secretsHandler: CommandHandler<SecretsState, SecretsCommand, SecretsEvent>;
let commands = 0;
/** Each app's SECRETS state as the last command left it (this test is its only writer). */
const secretStates = new Map<string, SecretsState>();
const meta = () => ({ commandId: `test-${suffix}-${++commands}` });

/** A proxy process's edge apps and its listener, opening secrets with `k` (none: no master key). */
interface TestProxy {
  port: number;
  secrets: AppSecrets;
  edgeApps: RunningEdgeApps;
  proxy: EdgeProxy;
  routes: StreamRouteTable;
}
const proxies: TestProxy[] = [];

async function startProxy(k: MasterKeys | undefined): Promise<TestProxy> {
  const appSecrets = await AppSecrets.start(store, k, { stream: streams.secrets });
  const routes = await StreamRouteTable.start(store, { apps: streams.apps, machines: streams.machines });
  const edgeApps = await startEdgeApps({
    nc,
    store,
    routes,
    proxyId: `edge-secrets-test.${suffix}.${proxies.length}`,
    region: "local",
    domain: "localhost",
    replicas: 1,
    logger,
    secrets: appSecrets,
    releases: streams.releases,
    bundlesBucket,
    cacheBucket: `edgeseccache${suffix}`,
  });
  const proxy = createProxy({
    routes,
    region: "local",
    edge: edgeApps.edge,
    logger,
  });
  await edgeApps.listenInternal(proxy.internal);
  await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
  const p = {
    port: (proxy.server.address() as AddressInfo).port,
    secrets: appSecrets,
    edgeApps,
    proxy,
    routes,
  };
  proxies.push(p);
  return p;
}

/** Sets the app's secrets as the gateway's `secrets set` does (deployed unless `staged`). */
async function setSecrets(app: string, values: Record<string, string>, staged = false): Promise<void> {
  const id = appSecretsId(app);
  const crypto = scopeOfApp(app);
  const scope = {
    crypto,
    state: () => secretStates.get(app),
    async record(command: SecretsCommand) {
      secretStates.set(app, (await secretsHandler.handle(id, command, meta())).state);
    },
  };
  const dataKey = await secretsDataKey(keys, scope);
  const set = sealSecrets(dataKey, crypto, Object.entries(values));
  await scope.record({ type: "UpdateSecrets", set, unset: [], staged, atMs: Date.now() });
}

async function release(app: string, code: string, env: Record<string, string> = {}): Promise<void> {
  const digest = `sha256:${createHash("sha256").update(code).digest("hex")}`;
  await bucket.putBlob({ name: edgeBundleName(app, digest) }, new TextEncoder().encode(code));
  await releaseHandler.handle(
    app,
    {
      type: "CreateRelease",
      releaseId: `r-${suffix}-${commands}`,
      imageRef: "",
      edge: { bundleDigest: digest, cpuMs: 200, memoryMb: 64 },
      configJson: JSON.stringify({ env }),
    },
    meta(),
  );
}

/** Asks until the app answers with `status` and `body`, at most 5 s; returns the last answer. */
async function answers(port: number, app: string, status: number, body?: string) {
  let got = await send(port, `${app}.localhost`);
  for (let i = 0; i < 100; i++) {
    if (got.status === status && (body === undefined || got.body.toString() === body)) return got;
    await new Promise((r) => setTimeout(r, 50));
    got = await send(port, `${app}.localhost`);
  }
  throw new Error(`${app} answered ${got.status} ${got.body.toString()}, not ${status} ${body ?? ""}`);
}

const showsEnv = `export default { fetch(req, env) {
  return new Response(JSON.stringify({ token: env.API_TOKEN ?? null, mode: env.MODE ?? null }));
} };`;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  for (const s of Object.values(streams)) await ensureStream(store.jsm, s);
  releaseHandler = new CommandHandler(store, streams.releases, releaseDecider);
  secretsHandler = new CommandHandler(store, streams.secrets, secretsDecider);
  bucket = await new Objm(nc).create(bundlesBucket);
}, 60_000);

afterAll(async () => {
  for (const p of proxies) {
    await p.proxy.close();
    await p.edgeApps.stop();
    await p.secrets.stop();
    await p.routes.stop();
  }
  await bucket?.destroy().catch(() => undefined);
  store?.close();
  await nc?.drain();
});

describe("an edge app's secrets as env", () => {
  it("gives the code its deployed secrets over [env], not another app's, and a change reaches it", async () => {
    const withKey = await startProxy(keys);
    const app = `sec-${suffix}`;
    const other = `plain-${suffix}`;
    await setSecrets(app, { API_TOKEN: "t0ken" });
    await setSecrets(app, { MODE: "staged-only" }, true);
    await release(app, showsEnv, { MODE: "from-env", API_TOKEN: "overridden" });
    await release(other, showsEnv, { MODE: "plain" });
    await answers(withKey.port, app, 200, JSON.stringify({ token: "t0ken", mode: "from-env" }));
    await answers(withKey.port, other, 200, JSON.stringify({ token: null, mode: "plain" }));
    // `secrets set` (deployed at once, with what was staged): the running code gets a fresh deploy.
    await setSecrets(app, { API_TOKEN: "r0tated" });
    await answers(withKey.port, app, 200, JSON.stringify({ token: "r0tated", mode: "staged-only" }));
    await answers(withKey.port, other, 200, JSON.stringify({ token: null, mode: "plain" }));
  });

  it("refuses an app whose secrets do not open on a proxy without the master key, and serves the others", async () => {
    const keyless = await startProxy(undefined);
    const app = `sec-${suffix}`;
    const got = await answers(keyless.port, app, 503);
    expect(got.json()).toMatchObject({ status: "not_deployed" });
    const error = (got.json() as { error: string }).error;
    expect(error).toContain(`edge app ${app} is not run by this proxy`);
    expect(error).toContain("no master key");
    expect(error).not.toContain("r0tated");
    await answers(keyless.port, `plain-${suffix}`, 200, JSON.stringify({ token: null, mode: "plain" }));
  });
});

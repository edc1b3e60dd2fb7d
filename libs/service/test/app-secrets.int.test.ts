// AppSecrets (the host agent's machine secrets) on a real nats-server: what the gateway appends (sealed values) opens here into an
// app's environment, staged values stay out until deployed, and a host without the master key (or
// with another one) refuses to start the app's machines rather than start them without secrets.
import { randomBytes } from "node:crypto";
import {
  appSecretsId,
  type SecretsCommand,
  type SecretsEvent,
  type SecretsState,
  secretsDecider,
  secretsStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { digestKey, encryptSecret, MasterKeys, newDataKey, scopeOfApp, secretDigest } from "@hangar/secrets";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AppSecrets, AppSecretsError } from "../src/app-secrets.js";

const stream = prefixedStream(secretsStream, `has${randomBytes(3).toString("hex")}`);
const keys = new MasterKeys(newDataKey());
let nc: NatsConnection;
let store: EventStore;
const opened: AppSecrets[] = [];
/** The host agent's histogram (services/host-agent/src/main.ts). */
const INJECT_METRIC = {
  name: "hangar_host_secret_inject_seconds",
  help: "Time secrets add to one machine start",
};

/** Seals values for `app` as the gateway does and appends them (data key first). */
async function gatewaySets(app: string, values: Record<string, string>, staged = false): Promise<void> {
  const handler = new CommandHandler<SecretsState, SecretsCommand, SecretsEvent>(
    store,
    stream,
    secretsDecider,
  );
  const scope = scopeOfApp(app);
  const dataKey = newDataKey();
  const sealed = keys.wrap(dataKey, scope);
  const id = appSecretsId(app);
  const meta = () => ({ commandId: randomBytes(8).toString("hex") });
  await handler.handle(
    id,
    { type: "CreateDataKey", masterKeyId: sealed.keyId, wrappedKey: sealed.wrapped, atMs: 1 },
    meta(),
  );
  const set = Object.entries(values).map(([name, value]) => ({
    name,
    ciphertext: encryptSecret(dataKey, scope, name, value),
    digest: secretDigest(digestKey(dataKey, scope), value),
  }));
  await handler.handle(id, { type: "UpdateSecrets", set, unset: [], staged, atMs: 2 }, meta());
}

async function open(k: MasterKeys | undefined, registry?: Registry): Promise<AppSecrets> {
  const s = await AppSecrets.start(store, k, {
    stream,
    ...(registry ? { registry, metric: INJECT_METRIC } : {}),
  });
  opened.push(s);
  return s;
}

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
  await gatewaySets("web", { DATABASE_URL: "postgres://db", API_KEY: "k3y" });
  await gatewaySets("staged", { LATER: "x" }, true);
});

afterAll(async () => {
  for (const s of opened) await s.stop();
  store?.close();
  await nc?.drain();
});

describe("app secrets (a machine's or an edge app's)", () => {
  it("opens an app's deployed secrets into environment variables, and times each opening", async () => {
    const registry = new Registry();
    const secrets = await open(keys, registry);
    expect(await secrets.envFor("web")).toEqual({ DATABASE_URL: "postgres://db", API_KEY: "k3y" });
    expect(secrets.envOf("no-secrets")).toEqual({});
    expect(secrets.envOf("staged")).toEqual({});
    expect(await registry.getSingleMetricAsString("hangar_host_secret_inject_seconds")).toMatch(
      /hangar_host_secret_inject_seconds_count 1/,
    );
  });

  it("tells a listener which app's secrets changed after the start", async () => {
    const secrets = await open(keys);
    const changed: string[] = [];
    const unsubscribe = secrets.onChange((app) => changed.push(app));
    await gatewaySets("notified", { TOKEN: "t" });
    await secrets.envFor("notified");
    expect(changed).toContain("notified");
    expect(changed.every((app) => app === "notified")).toBe(true);
    unsubscribe();
  });

  it("catches up with a change appended after it started before it opens the app's secrets", async () => {
    const secrets = await open(keys);
    await gatewaySets("late", { FRESH: "new" });
    expect(await secrets.envFor("late")).toEqual({ FRESH: "new" });
  });

  it("refuses, without naming any value, when this host has no master key or another one", async () => {
    const keyless = await open(undefined);
    expect(() => keyless.envOf("web")).toThrow(AppSecretsError);
    expect(() => keyless.envOf("web")).toThrow(/no master key/);
    // An app without secrets still starts on such a host.
    expect(keyless.envOf("no-secrets")).toEqual({});
    const other = await open(new MasterKeys(newDataKey()));
    let message = "";
    try {
      other.envOf("web");
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/do not open/);
    expect(message).not.toMatch(/postgres|k3y/);
  });
});

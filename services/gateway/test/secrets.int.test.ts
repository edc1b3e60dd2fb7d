// The secrets API on a real nats-server: Fly's REST shape, values in and never out, staging, org
// secrets, the refusals (400s, 404s, 412 without a master key), and the master key rotation the
// gateway does at start (data keys rewrapped, values still open under the new key alone).
import { randomBytes } from "node:crypto";
import { secretsDecider, secretsStream } from "@hangar/domain";
import { EventStore, ensureStream, loadAggregate, prefixedStream } from "@hangar/eventstore";
import { decryptSecret, MasterKeys, newDataKey, scopeOfApp } from "@hangar/secrets";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApi } from "../src/http/api.js";
import type { MachinesBackend } from "../src/http/backend.js";
import { ApiError } from "../src/http/errors.js";
import type { SecretsListing } from "../src/http/secrets-backend.js";
import { StreamSecretsBackend } from "../src/secrets/backend.js";
import { testAuth } from "./auth-fixture.js";

const { auth, token } = testAuth();
const logger = createLogger("secrets-test", { level: "silent" });
const noMachines = new Proxy({} as MachinesBackend, {
  get: () => async () => {
    throw ApiError.of("unknown", "the machines backend is not part of this test");
  },
});

const oldKey = newDataKey();
const newKey = newDataKey();
const stream = prefixedStream(secretsStream, `gws${randomBytes(3).toString("hex")}`);
let nc: NatsConnection;
let store: EventStore;
const backends: StreamSecretsBackend[] = [];

async function gateway(keys: MasterKeys | undefined) {
  const backend = await StreamSecretsBackend.start(store, keys, logger, stream);
  backends.push(backend);
  const api = createApi({ backend: noMachines, auth, logger, secrets: backend });
  return (method: string, path: string, body?: unknown) =>
    Promise.resolve(
      api.request(`/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      }),
    );
}

let call: Awaited<ReturnType<typeof gateway>>;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
  call = await gateway(new MasterKeys(oldKey));
});

afterAll(async () => {
  for (const b of backends) await b.stop();
  store?.close();
  await nc?.drain();
});

describe("the secrets API", () => {
  it("sets several secrets at once and lists names and digests, never values", async () => {
    const res = await call("POST", "/apps/web/secrets", {
      values: { DATABASE_URL: "postgres://x", TOKEN: "t0p" },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain("postgres://x");
    expect(text).not.toContain("t0p");
    const listing = JSON.parse(text) as SecretsListing;
    expect(listing.version).toBe(1);
    expect(listing.secrets.map((s) => [s.name, s.status])).toEqual([
      ["DATABASE_URL", "deployed"],
      ["TOKEN", "deployed"],
    ]);
    expect(listing.secrets[0]?.digest).toMatch(/^[0-9a-f]{32}$/);
    const list = await call("GET", "/apps/web/secrets");
    expect(await list.json()).toEqual(listing);
  });

  it("digests the same value differently in another app", async () => {
    await call("POST", "/apps/api/secrets", { values: { TOKEN: "t0p" } });
    const web = (await (await call("GET", "/apps/web/secrets")).json()) as SecretsListing;
    const api = (await (await call("GET", "/apps/api/secrets")).json()) as SecretsListing;
    const digest = (l: SecretsListing) => l.secrets.find((s) => s.name === "TOKEN")?.digest;
    expect(digest(web)).not.toBe(digest(api));
  });

  it("stages changes apart from the deployed ones; an empty POST deploys them", async () => {
    const staged = await call("POST", "/apps/web/secrets", {
      values: { TOKEN: "n3w", DATABASE_URL: null },
      stage: true,
    });
    expect(staged.status).toBe(200);
    const listing = (await staged.json()) as SecretsListing;
    expect(listing.version).toBe(1);
    expect(listing.secrets.map((s) => [s.name, s.status, s.digest === null])).toEqual([
      ["DATABASE_URL", "unset_staged", true],
      ["TOKEN", "staged", false],
    ]);
    const deployed = (await (
      await call("POST", "/apps/web/secrets", { values: {} })
    ).json()) as SecretsListing;
    expect(deployed.version).toBe(2);
    expect(deployed.secrets.map((s) => [s.name, s.status])).toEqual([["TOKEN", "deployed"]]);
  });

  it("unsets one secret with DELETE, and 404s one it does not have", async () => {
    await call("POST", "/apps/web/secrets", { values: { GONE: "x" } });
    const res = await call("DELETE", "/apps/web/secrets/GONE");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ version: 4 });
    const again = await call("DELETE", "/apps/web/secrets/GONE");
    expect(again.status).toBe(404);
    expect(await again.json()).toEqual({ error: "secret GONE not found", status: "not_found" });
    const unset = await call("POST", "/apps/web/secrets", { values: { GONE: null } });
    expect(unset.status).toBe(404);
  });

  it("refuses bad names, oversized values, malformed bodies and nothing to stage, with 400", async () => {
    const cases: Array<[string, string, unknown]> = [
      ["POST", "/apps/web/secrets", { values: { "BAD-NAME": "x" } }],
      ["POST", "/apps/web/secrets", { values: { "1X": "x" } }],
      ["POST", "/apps/web/secrets", { values: { BIG: "x".repeat(64 * 1024 + 1) } }],
      ["POST", "/apps/web/secrets", { values: { N: 5 } }],
      ["POST", "/apps/web/secrets", { values: {}, stage: true }],
      ["POST", "/apps/web/secrets", { secrets: {} }],
      ["POST", "/apps/web/secrets", "{not json"],
      ["POST", "/orgs/personal/secrets", { values: { A: "x" }, stage: true }],
      ["DELETE", "/apps/web/secrets/BAD.NAME", undefined],
      ["GET", "/apps/Not_An_App/secrets", undefined],
    ];
    for (const [method, path, body] of cases) {
      const res = await call(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)?.slice(0, 60)}`).toBe(400);
      expect(((await res.json()) as { status: string }).status).toBe("invalid_argument");
    }
  });

  it("keeps org secrets apart from app secrets; another org's are 404", async () => {
    const res = await call("POST", "/orgs/personal/secrets", { values: { REGISTRY_PASSWORD: "pw" } });
    expect(res.status).toBe(200);
    const org = (await res.json()) as SecretsListing;
    expect(org.secrets.map((s) => s.name)).toEqual(["REGISTRY_PASSWORD"]);
    const app = (await (await call("GET", "/apps/web/secrets")).json()) as SecretsListing;
    expect(app.secrets.map((s) => s.name)).not.toContain("REGISTRY_PASSWORD");
    expect((await call("GET", "/orgs/elsewhere/secrets")).status).toBe(404);
  });

  it("answers 412 when the gateway has no master key", async () => {
    const keyless = await gateway(undefined);
    const res = await keyless("POST", "/apps/fresh/secrets", { values: { A: "x" } });
    expect(res.status).toBe(412);
    expect(((await res.json()) as { error: string }).error).toMatch(/HANGAR_SECRETS_KEY/);
  });
});

describe("master key rotation", () => {
  it("rewraps every data key at start; the values then open under the new key alone", async () => {
    const before = await store.jsm.streams.info(stream.name);
    await gateway(new MasterKeys(newKey, [oldKey]));
    const after = await store.jsm.streams.info(stream.name);
    // web, api and the org each had a data key under the old master key: one rewrap event each.
    expect(after.state.last_seq - before.state.last_seq).toBe(3);
    const { state } = await loadAggregate(store, stream, secretsDecider, "app.web");
    const onlyNew = new MasterKeys(newKey);
    expect(state.dataKey?.masterKeyId).toBe(onlyNew.currentId);
    const dataKey = onlyNew.unwrap(
      { keyId: state.dataKey?.masterKeyId ?? "", wrapped: state.dataKey?.wrappedKey ?? new Uint8Array() },
      scopeOfApp("web"),
    );
    const token = state.deployed.TOKEN;
    expect(token && decryptSecret(dataKey, scopeOfApp("web"), "TOKEN", token.ciphertext)).toBe("n3w");
    // A second start finds nothing left to rewrap, and one without the key sealing them still starts.
    await gateway(new MasterKeys(newKey, [oldKey]));
    await gateway(new MasterKeys(newDataKey()));
    expect((await store.jsm.streams.info(stream.name)).state.last_seq).toBe(after.state.last_seq);
  });
});

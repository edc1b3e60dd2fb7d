// The postgres routes over a real nats-server: the manager's side is a small responder on
// cmd.postgres.* (the manager itself is tested in services/postgres-manager), so these tests pin the
// gateway's part: validation, authorization by the cluster's org, error mapping, and the secret an
// attach sets. Every refusal also checks the manager was never asked.
import { randomBytes } from "node:crypto";
import { mintToken } from "@hangar/auth";
import {
  CommandError,
  type PgAttachRequest,
  type PgBackupView,
  type PgClusterView,
  type PgCreateRequest,
  type PgImportRequest,
  type PgRestoreRequest,
  serveCommands,
  subjects,
} from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createApi } from "../src/http/api.js";
import type { TokenAuth } from "../src/http/auth.js";
import { ApiError } from "../src/http/errors.js";
import type {
  SecretScope,
  SecretsBackend,
  SecretsListing,
  SecretsUpdate,
} from "../src/http/secrets-backend.js";
import { NatsPostgresBackend } from "../src/postgres/backend.js";

const KEY = new Uint8Array(randomBytes(32));
// db and web are acme's, rivaldb and shop rival's; plain is an app of acme that is no cluster.
const ORG_OF: Record<string, string> = {
  db: "acme",
  web: "acme",
  plain: "acme",
  rivaldb: "rival",
  shop: "rival",
};
const AUTH: TokenAuth = {
  key: KEY,
  directory: {
    orgOf: (app) => ORG_OF[app],
    exists: (org) => org === "acme" || org === "rival",
    limitsOf: () => ({}),
  },
  isRevoked: () => false,
};
const ACME = mintToken(KEY, { id: "tok_acme", kind: "org", org: "acme" });
const ACME_READ = mintToken(KEY, { id: "tok_read", kind: "readonly", org: "acme" });
const OPERATOR = mintToken(KEY, { id: "tok_op", kind: "operator" });
const URI = "postgres://web:s3cret-pw@db.internal:5432/web?sslmode=disable";

function cluster(name: string, org: string): PgClusterView {
  return {
    name,
    org,
    region: "local",
    vm_size: "shared-cpu-1x",
    volume_size_gb: 1,
    status: "ready",
    primary_id: "m1",
    timeline: 1,
    members: [],
    attachments: [],
    created_at: "2026-12-05T11:00:00.000Z",
  };
}

const BACKUP: PgBackupView = {
  id: "20261205113000000-ab12cd",
  status: "completed",
  member_id: "m1",
  started_at: "2026-12-05T11:30:00.000Z",
  finished_at: "2026-12-05T11:30:04.000Z",
  start_lsn: "0/2000028",
  timeline: 1,
  size: 31_000_000,
  stored_size: 4_000_000,
  sha256: "a".repeat(64),
  error: null,
};

/** The app secrets the routes set, by app: the gateway's own SecretsBackend, kept in memory. */
class MemorySecrets implements SecretsBackend {
  readonly values = new Map<string, Record<string, string>>();
  list(scope: SecretScope): SecretsListing {
    const names = Object.keys(this.values.get(scope.name) ?? {});
    return {
      secrets: names.map((name) => ({
        name,
        digest: "d",
        status: "deployed",
        created_at: "",
        updated_at: "",
      })),
      version: 1,
    };
  }
  async update(scope: SecretScope, update: SecretsUpdate): Promise<SecretsListing> {
    const current = { ...this.values.get(scope.name) };
    for (const [name, value] of Object.entries(update.values)) {
      if (value === null) delete current[name];
      else current[name] = value;
    }
    this.values.set(scope.name, current);
    return this.list(scope);
  }
  async unset(): Promise<{ version: number }> {
    throw ApiError.of("invalid_argument", "not used by the postgres routes");
  }
}

let nats: NatsServer;
let nc: NatsConnection;
let secrets: MemorySecrets;
let api: ReturnType<typeof createApi>;
/** Every request the responder got: [verb, payload]. */
const asked: Array<[string, unknown]> = [];
const clusters = new Map<string, PgClusterView>();
let releaseSlowCreate: () => void = () => undefined;

/** The manager's side of the contract, for the clusters in `clusters`. */
async function answer(payload: Record<string, unknown>, subject: string): Promise<unknown> {
  const verb = subject.split(".").pop() ?? "";
  asked.push([verb, payload]);
  const found = (name: unknown) => {
    const c = clusters.get(String(name));
    if (!c) throw new CommandError(`postgres cluster ${String(name)} not found`, "not_found");
    return c;
  };
  switch (verb) {
    case "create": {
      const req = payload as unknown as PgCreateRequest;
      if (clusters.has(req.name))
        throw new CommandError(`cluster ${req.name} already exists`, "already_exists");
      if (req.name === "slow") await new Promise<void>((resolve) => (releaseSlowCreate = resolve));
      return { ...cluster(req.name, req.org), region: req.region };
    }
    case "list":
      return { clusters: [...clusters.values()].filter((c) => c.org === payload.org) };
    case "status":
      return found(payload.cluster);
    case "attach": {
      const req = payload as unknown as PgAttachRequest;
      const c = found(req.cluster);
      const variable = req.variable_name ?? "DATABASE_URL";
      c.attachments.push({ app: req.app, database: req.database_name ?? req.app, user: req.app, variable });
      return { database: req.database_name ?? req.app, user: req.app, variable, connection_uri: URI };
    }
    case "detach": {
      const c = found(payload.cluster);
      c.attachments = c.attachments.filter((a) => a.app !== payload.app);
      return {};
    }
    case "failover":
      found(payload.cluster);
      return { old_primary_id: "m1", new_primary_id: "m2", timeline: 2, duration_ms: 812 };
    case "backup_create":
      found(payload.cluster);
      return BACKUP;
    case "backup_list":
      found(payload.cluster);
      return { backups: [BACKUP] };
    case "backup_restore": {
      const req = payload as unknown as PgRestoreRequest;
      const source = found(req.cluster);
      if (clusters.has(req.name)) throw new CommandError(`the name ${req.name} is taken`, "already_exists");
      return cluster(req.name, source.org);
    }
    case "import": {
      const req = payload as unknown as PgImportRequest;
      found(req.cluster);
      return {
        cluster: req.cluster,
        database: "shop",
        machine_id: "imp1",
        exit_code: 0,
        log_tail: ["import: done"],
        duration_ms: 1200,
      };
    }
    default:
      found(payload.cluster);
      clusters.delete(String(payload.cluster));
      return {};
  }
}

beforeAll(async () => {
  nats = await startNatsServer({ jetstream: false });
  nc = await connect({ servers: nats.url });
  serveCommands<Record<string, unknown>, unknown>(nc, "cmd.postgres.*", "postgres-manager", answer);
  await nc.flush();
});

afterAll(async () => {
  releaseSlowCreate();
  await nc?.drain();
  await nats?.stop();
});

/**
 * The API over the responder. A create's answer is awaited `createWaitMs` (long by default, so that a
 * refusal is the answer however slow the machine is; only the 202 test shortens it).
 */
function apiOver(createWaitMs = 30_000): ReturnType<typeof createApi> {
  return createApi({
    backend: {} as never,
    auth: AUTH,
    secrets,
    postgres: new NatsPostgresBackend(nc, {
      defaultRegion: "local",
      logger: createLogger("test", { level: "silent" }),
      createWaitMs,
    }),
    logger: createLogger("test", { level: "silent" }),
  });
}

beforeEach(() => {
  asked.length = 0;
  clusters.clear();
  clusters.set("db", cluster("db", "acme"));
  clusters.set("rivaldb", cluster("rivaldb", "rival"));
  secrets = new MemorySecrets();
  api = apiOver();
});

async function call(method: string, path: string, body?: unknown, token = ACME) {
  const res = await api.request(`/v1${path}`, {
    method,
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("postgres routes", () => {
  it("creates a cluster in the token's org with the defaults filled in", async () => {
    const res = await call("POST", "/postgres", { name: "orders", initial_cluster_size: 3 });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ name: "orders", org: "acme", status: "ready" });
    expect(asked[0]?.[1]).toMatchObject({
      name: "orders",
      org: "acme",
      region: "local",
      vm_size: "shared-cpu-1x",
      volume_size_gb: 1,
      initial_size: 3,
    });
    expect(subjects.postgres.create).toBe("cmd.postgres.create");
  });

  it("answers 202 while a create goes on, for the caller to follow its status", async () => {
    api = apiOver(200);
    const res = await call("POST", "/postgres", { name: "slow" });
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ name: "slow", org: "acme", status: "creating" });
    releaseSlowCreate();
  });

  it.each([
    [{ region: "local" }, /name: required/],
    [{ name: "Bad_Name" }, /name: expected lowercase letters/],
    [{ name: "orders", vm_size: "huge-cpu" }, /vm_size: expected one of shared-cpu-1x/],
    [{ name: "orders", volume_size_gb: 0 }, /volume_size_gb/],
    [{ name: "orders", initial_cluster_size: 9 }, /initial_cluster_size/],
    [{ name: "orders", initial_cluster_size: 1.5 }, /initial_cluster_size/],
    [{ name: "orders", region: "no.dots" }, /region/],
  ])("refuses a create body %j with 400 naming the field", async (body, message) => {
    const res = await call("POST", "/postgres", body);
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ status: "invalid_argument" });
    expect(res.json.error).toMatch(message);
    expect(asked).toEqual([]);
  });

  it("refuses malformed JSON, another org's create and a taken name, without a 500", async () => {
    expect((await call("POST", "/postgres", "{nope")).status).toBe(400);
    const other = await call("POST", "/postgres", { name: "orders", org_slug: "rival" });
    expect(other).toEqual({ status: 404, json: { error: "org rival not found", status: "not_found" } });
    expect((await call("POST", "/postgres", { name: "orders" }, ACME_READ)).status).toBe(403);
    expect(asked).toEqual([]);
    const taken = await call("POST", "/postgres", { name: "db" });
    expect(taken).toEqual({
      status: 409,
      json: { error: "cluster db already exists", status: "already_exists" },
    });
  });

  it("lists and shows only the token's org's clusters; another org's is a 404 the manager never sees", async () => {
    const list = await call("GET", "/postgres", undefined, ACME_READ);
    expect((list.json.clusters as PgClusterView[]).map((c) => c.name)).toEqual(["db"]);
    expect((await call("GET", "/postgres/db", undefined, ACME_READ)).json).toMatchObject({ name: "db" });
    asked.length = 0;
    for (const [method, path] of [
      ["GET", "/postgres/rivaldb"],
      ["POST", "/postgres/rivaldb/failover"],
      ["DELETE", "/postgres/rivaldb"],
      ["GET", "/postgres/nowhere"],
    ] as const) {
      const res = await call(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.json.status).toBe("not_found");
    }
    expect((await call("GET", "/postgres?org_slug=rival")).status).toBe(404);
    expect(asked).toEqual([]);
    // An app of the org that is no cluster: the manager's own not_found.
    const plain = await call("GET", "/postgres/plain");
    expect(plain).toEqual({
      status: 404,
      json: { error: "postgres cluster plain not found", status: "not_found" },
    });
  });

  it("refuses a read-only token's attach, detach, failover and destroy with 403", async () => {
    for (const [method, path, body] of [
      ["POST", "/postgres/db/attach", { app: "web" }],
      ["POST", "/postgres/db/detach", { app: "web" }],
      ["POST", "/postgres/db/failover", undefined],
      ["DELETE", "/postgres/db", undefined],
    ] as const) {
      const res = await call(method, path, body, ACME_READ);
      expect(res.status, path).toBe(403);
      expect(res.json.status).toBe("permission_denied");
    }
    expect(asked).toEqual([]);
    expect(secrets.values.size).toBe(0);
  });

  it("attaches: the manager makes the database, the app gets the URI as a secret, the answer has no password", async () => {
    const res = await call("POST", "/postgres/db/attach", { app: "web", variable_name: "PG_URL" });
    expect(res).toEqual({
      status: 200,
      json: { database: "web", user: "web", variable: "PG_URL", app: "web" },
    });
    expect(JSON.stringify(res.json)).not.toContain("s3cret");
    expect(secrets.values.get("web")).toEqual({ PG_URL: URI });

    const detached = await call("POST", "/postgres/db/detach", { app: "web" });
    expect(detached.json).toMatchObject({ app: "web", variable: "PG_URL", secret_unset: true });
    expect(secrets.values.get("web")).toEqual({});
    const again = await call("POST", "/postgres/db/detach", { app: "web" });
    expect(again).toEqual({
      status: 404,
      json: { error: "app web is not attached to cluster db", status: "not_found" },
    });
  });

  it("refuses an attach to another org's app: 404 to a token that cannot see it, 400 to one that can", async () => {
    const hidden = await call("POST", "/postgres/db/attach", { app: "shop" });
    expect(hidden).toEqual({ status: 404, json: { error: "app shop not found", status: "not_found" } });
    const operator = await call("POST", "/postgres/db/attach", { app: "shop" }, OPERATOR);
    expect(operator.status).toBe(400);
    expect(operator.json.error).toMatch(/app shop is in org rival but cluster db is in org acme/);
    expect(asked).toEqual([]);
    expect(secrets.values.size).toBe(0);
  });

  it.each([
    [{}, /app: required/],
    [{ app: "web", database_name: "Web-DB" }, /database_name/],
    [{ app: "web", variable_name: "1URL" }, /variable_name/],
  ])("refuses an attach body %j with 400", async (body, message) => {
    const res = await call("POST", "/postgres/db/attach", body);
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(message);
    expect(asked).toEqual([]);
  });

  it("backs up, lists backups and restores into a new cluster of the source's org", async () => {
    expect(await call("POST", "/postgres/db/backups")).toEqual({ status: 200, json: BACKUP });
    expect((await call("GET", "/postgres/db/backups", undefined, ACME_READ)).json).toEqual({
      backups: [BACKUP],
    });
    const restored = await call("POST", "/postgres/db/backups/restore", {
      name: "db2",
      time: "2026-12-05T11:30:02Z",
    });
    expect(restored.status).toBe(200);
    expect(restored.json).toMatchObject({ name: "db2", org: "acme" });
    expect(asked.at(-1)).toEqual([
      "backup_restore",
      expect.objectContaining({ cluster: "db", name: "db2", time: "2026-12-05T11:30:02Z" }),
    ]);
    const taken = await call("POST", "/postgres/db/backups/restore", { name: "rivaldb" });
    expect(taken.status).toBe(409);
  });

  it("refuses another org's backups (404), a read-only token's backup or restore (403), a bad time or name (400), before the manager", async () => {
    for (const [method, path] of [
      ["POST", "/postgres/rivaldb/backups"],
      ["GET", "/postgres/rivaldb/backups"],
      ["POST", "/postgres/rivaldb/backups/restore"],
    ] as const) {
      expect((await call(method, path, method === "POST" ? { name: "x2" } : undefined)).status, path).toBe(
        404,
      );
    }
    expect((await call("POST", "/postgres/db/backups", undefined, ACME_READ)).status).toBe(403);
    expect((await call("POST", "/postgres/db/backups/restore", { name: "db2" }, ACME_READ)).status).toBe(403);
    for (const body of [
      { name: "db2", time: "yesterday" },
      { name: "db2", time: "2026-12-05 11:30:00" },
      { name: "Bad Name" },
      {},
    ]) {
      const res = await call("POST", "/postgres/db/backups/restore", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect(asked).toEqual([]);
  });

  it("imports through the manager; a bad body (400), a read-only token (403), another org's cluster (404) never reach it", async () => {
    const source = "postgres://u:pw@db.example.com/shop";
    for (const body of [
      {},
      { source_url: "mysql://u:pw@h/shop" },
      { source_url: 42 },
      { source_url: source, clean: "yes" },
    ]) {
      const res = await call("POST", "/postgres/db/import", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(res.json)).not.toContain("pw@");
    }
    expect((await call("POST", "/postgres/db/import", { source_url: source }, ACME_READ)).status).toBe(403);
    expect((await call("POST", "/postgres/rivaldb/import", { source_url: source })).status).toBe(404);
    expect(asked).toEqual([]);
    const res = await call("POST", "/postgres/db/import", { source_url: source, clean: true });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ database: "shop", exit_code: 0, log_tail: ["import: done"] });
    expect(asked).toEqual([["import", { cluster: "db", source_url: source, options: { clean: true } }]]);
  });

  it("fails over and destroys through the manager", async () => {
    const failover = await call("POST", "/postgres/db/failover");
    expect(failover.json).toEqual({
      old_primary_id: "m1",
      new_primary_id: "m2",
      timeline: 2,
      duration_ms: 812,
    });
    expect((await call("DELETE", "/postgres/db")).json).toEqual({ name: "db", status: "destroyed" });
    expect((await call("GET", "/postgres/db")).status).toBe(404);
  });
});

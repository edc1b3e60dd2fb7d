import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PgCluster, psqlCommand } from "../src/commands/postgres.js";
import { FakeApi } from "./fake-api.js";
import { runCliIn } from "./run-cli.js";

// `hangar postgres` in this process against a stand-in for the HTTP API: the requests each command
// sends, what it prints and how it exits. The routes are tested over NATS in
// services/gateway/test/postgres-routes.int.test.ts, the whole path in tests/postgres.

const TOKEN = "test-token";
let api: FakeApi;
let home: string;

function cluster(over: Partial<PgCluster> = {}): PgCluster {
  return {
    name: "orders",
    org: "acme",
    region: "local",
    status: "ready",
    primary_id: "m1",
    timeline: 1,
    members: [
      {
        id: "m1",
        region: "local",
        host_id: "host-a",
        volume_id: "vol_a",
        role: "primary",
        state: "primary",
        fenced: false,
        timeline: 1,
        lsn: "0/3000148",
        replay_lag_ms: null,
        healthy: true,
      },
    ],
    attachments: [],
    ...over,
  };
}

const hangar = (args: string[]) => runCliIn(home, args);

beforeAll(async () => {
  api = await FakeApi.start(TOKEN);
  home = await mkdtemp(join(tmpdir(), "hangar-cli-postgres-"));
  await writeFile(join(home, "local.json"), JSON.stringify({ api_url: api.url, token: TOKEN }));
});

afterAll(async () => {
  await api?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

describe("hangar postgres", () => {
  it("create sends the flags, follows a create in progress line by line, then says how to use it", async () => {
    api.reply("POST", "/postgres", { name: "orders", org: "acme", status: "creating" }, 202);
    api.route("GET", "/postgres/orders", (_req, n) =>
      n === 0
        ? { status: 404, body: { error: "app orders not found", status: "not_found" } }
        : { status: 200, body: n === 1 ? cluster({ status: "creating", primary_id: null }) : cluster() },
    );
    const res = await hangar([
      "postgres",
      "create",
      "--name",
      "orders",
      "--initial-cluster-size",
      "3",
      "--vm-size",
      "shared-cpu-2x",
      "--volume-size",
      "2",
      "--org",
      "acme",
    ]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(api.seen("POST", "/postgres")[0]?.body).toEqual({
      name: "orders",
      vm_size: "shared-cpu-2x",
      volume_size_gb: 2,
      initial_cluster_size: 3,
      org_slug: "acme",
    });
    expect(res.stdout).toMatch(
      /^Creating postgres cluster orders: 3 member\(s\) of shared-cpu-2x, 2GB volume each\n/,
    );
    expect(res.stdout).toContain(
      "Member m1 added: volume vol_a on host host-a\nMember m1 is ready as primary\nCluster orders is creating\nCluster orders is ready\n",
    );
    expect(res.stdout).toContain("Postgres cluster orders is ready (primary m1, 1 member(s))");
    expect(res.stdout).toContain("hangar postgres attach orders -a <app>");
  });

  it("create --json prints the cluster alone on stdout when the API answers it ready", async () => {
    api.reply("POST", "/postgres", cluster({ name: "quick" }));
    const res = await hangar(["postgres", "create", "--name", "quick", "--json"]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ name: "quick", status: "ready" });
    expect(res.stderr).toMatch(/^Creating postgres cluster quick: 1 member\(s\) of shared-cpu-1x, 1GB/);
  });

  it("refuses bad names, sizes and flags with a usage error, before calling the API", async () => {
    const before = api.requests.length;
    for (const args of [
      ["postgres", "create", "--name", "Bad_Name"],
      ["postgres", "create"],
      ["postgres", "create", "--name", "db", "--initial-cluster-size", "9"],
      ["postgres", "create", "--name", "db", "--vm-size", "huge"],
      ["postgres", "attach", "orders", "-a", "web", "--database-name", "Web-DB"],
      ["postgres", "attach", "orders", "-a", "web", "--variable-name", "1URL"],
      ["postgres", "connect", "-a", "orders", "-d", "x;drop"],
    ]) {
      const res = await hangar(args);
      expect(res.code, args.join(" ")).toBe(2);
    }
    expect(api.requests.length).toBe(before);
    const refused = await hangar(["postgres", "destroy", "orders"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refusing to destroy cluster orders without confirmation/);
  });

  it("list and status print tables, and JSON with --json", async () => {
    api.reply("GET", "/postgres", { clusters: [cluster()] });
    api.reply("GET", "/postgres/orders", cluster());
    const list = await hangar(["postgres", "list"]);
    expect(list.stdout).toMatch(
      /^NAME\s+ORG\s+REGION\s+STATUS\s+MEMBERS\s+PRIMARY\norders\s+acme\s+local\s+ready\s+1\s+m1\n$/,
    );
    expect(JSON.parse((await hangar(["postgres", "list", "--json"])).stdout)).toHaveLength(1);
    const status = await hangar(["postgres", "status", "-a", "orders"]);
    expect(status.stdout).toMatch(/m1\s+primary\s+primary\s+healthy\s+no\s+1\s+0\/3000148/);
    expect(JSON.parse((await hangar(["postgres", "status", "-a", "orders", "--json"])).stdout)).toEqual(
      cluster(),
    );
  });

  it("an unknown or another org's cluster fails with exit 1 and says how to list them", async () => {
    api.reply("GET", "/postgres/rival", { error: "app rival not found", status: "not_found" }, 404);
    api.reply("POST", "/postgres/rival/failover", { error: "app rival not found", status: "not_found" }, 404);
    for (const args of [
      ["postgres", "status", "-a", "rival"],
      ["postgres", "failover", "-a", "rival", "--json"],
    ]) {
      const res = await hangar(args);
      expect(res.code, args.join(" ")).toBe(1);
      expect(res.stdout).toBe("");
      expect(res.stderr).toBe(
        "Error: postgres cluster rival not found\nlist the clusters with `hangar postgres list`\n",
      );
    }
  });

  it("attach sets the secret through the API, then rolls the app's machines (none released: says so)", async () => {
    api.reply("POST", "/postgres/orders/attach", {
      database: "web_db",
      user: "web_db",
      variable: "DATABASE_URL",
      app: "web",
    });
    api.reply("GET", "/apps/web/releases", []);
    const res = await hangar(["postgres", "attach", "orders", "-a", "web", "--database-name", "web_db"]);
    expect(res.code).toBe(0);
    expect(api.seen("POST", "/postgres/orders/attach")[0]?.body).toEqual({
      app: "web",
      database_name: "web_db",
    });
    expect(res.stdout).toBe(
      "Database web_db and user web_db ready on cluster orders; secret DATABASE_URL set on app web\n" +
        "No release of app web to roll: machines get the new secrets when they next start (hangar machine restart)\n",
    );
  });

  it("a read-only token's attach and failover fail with the API's 403 and exit 1", async () => {
    const denied = { error: "token is read-only: it may not change app orders", status: "permission_denied" };
    api.reply("POST", "/postgres/orders/detach", denied, 403);
    api.reply("POST", "/postgres/orders/failover", denied, 403);
    for (const args of [
      ["postgres", "detach", "orders", "-a", "web"],
      ["postgres", "failover", "-a", "orders"],
    ]) {
      const res = await hangar(args);
      expect(res.code, args.join(" ")).toBe(1);
      expect(res.stderr).toBe(`Error: ${denied.error}\n`);
    }
  });

  it("failover prints the switch; connect opens psql in the primary through the console", async () => {
    api.reply("POST", "/postgres/db/failover", {
      old_primary_id: "m1",
      new_primary_id: "m2",
      timeline: 2,
      duration_ms: 1250,
    });
    const failover = await hangar(["postgres", "failover", "-a", "db"]);
    expect(failover.stdout).toBe("Primary of db switched over from m1 to m2 (timeline 2, 1.3s)\n");

    api.reply("GET", "/postgres/db", cluster({ name: "db", primary_id: "m2" }));
    // The stand-in cannot upgrade: what matters is the console asked for, on the primary.
    const connect = await hangar(["postgres", "connect", "-a", "db", "-d", "orders"]);
    expect(connect.code).toBe(1);
    const console = api.seen("GET", "/apps/db/machines/m2/console")[0];
    expect(console?.query.cmd).toBe(psqlCommand("orders", false));

    api.reply("GET", "/postgres/nop", cluster({ name: "nop", primary_id: null, status: "creating" }));
    const none = await hangar(["postgres", "connect", "-a", "nop"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/cluster nop has no primary right now \(creating\)/);
  });
});

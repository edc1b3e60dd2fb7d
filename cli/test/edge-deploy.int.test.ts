import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeApi } from "./fake-api.js";
import { runCliIn } from "./run-cli.js";

// `hangar deploy` of an edge app ([edge]) in this process against a stand-in for the HTTP API: the
// bundle it uploads, the release it records, and what it prints. services/gateway's
// edge-releases.int.test.ts checks the gateway's side; the e2e deploys through the real platform.

const TOKEN = "test-token";
let api: FakeApi;
let home: string;
let app: string;

const CODE =
  'import { greeting } from "./greeting.js";\nfly.http.respondWith(() => new Response(greeting));\n';

beforeAll(async () => {
  api = await FakeApi.start(TOKEN);
  home = await mkdtemp(join(tmpdir(), "hangar-edge-deploy-"));
  const local = { api_url: api.url, token: TOKEN, proxy_url: "http://localhost:18080" };
  await writeFile(join(home, "local.json"), JSON.stringify(local));
  app = join(home, "hello");
  await mkdir(app);
  await writeFile(join(app, "index.js"), CODE);
  await writeFile(join(app, "greeting.js"), 'export const greeting = "hello from the edge";\n');
  await writeFile(
    join(app, "hangar.toml"),
    'app = "hello"\n\n[edge]\ncpu_ms = 20\n\n[http_service]\ninternal_port = 8080\n',
  );
});

afterAll(async () => {
  await api?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

/** Answers the calls of an edge deploy (the app's secrets are `secrets`); the release ends `status` on its second poll. */
function platform(status: "succeeded" | "failed", secrets: { name: string; status: string }[] = []) {
  api.reply("GET", "/apps/hello", { name: "hello", status: "deployed", organization: { slug: "personal" } });
  api.reply("GET", "/apps/hello/secrets", { secrets });
  api.reply("POST", "/apps/hello/secrets", { secrets: secrets.map((s) => ({ ...s, status: "deployed" })) });
  api.route("POST", "/apps/hello/edge/bundles", (req) => ({
    status: 201,
    body: { digest: req.query.digest, size: Buffer.byteLength(String(req.body)) },
  }));
  api.route("POST", "/apps/hello/releases", (req) => {
    const body = req.body as { edge_bundle: string; config: { edge: { cpu_ms: number; memory_mb: number } } };
    const edge = {
      bundle: body.edge_bundle,
      cpu_ms: body.config.edge.cpu_ms,
      memory_mb: body.config.edge.memory_mb,
    };
    return { status: 201, body: { version: 4, status: "pending", image: "", edge, machine_ids: [] } };
  });
  api.route("GET", "/apps/hello/releases/4", (_req, calls) => ({
    status: 200,
    body: {
      version: 4,
      status: calls === 0 ? "pending" : status,
      ...(status === "failed" && calls > 0 ? { reason: "superseded by v5" } : {}),
      image: "",
      machine_ids: [],
    },
  }));
  api.reply("GET", "/apps/hello/machines", []);
}

describe("hangar deploy of an edge app", () => {
  it("bundles the code, uploads it by digest, releases it for the platform and prints the outcome", async () => {
    platform("succeeded");
    const res = await runCliIn(home, ["deploy", app, "--json", "-m", "first"]);
    expect(res.stderr).not.toMatch(/Error/);
    expect(res.code).toBe(0);
    // The machine-only section gets the config's warning; nothing was built.
    expect(res.stderr).toContain("http_service is not used by an edge app");
    expect(api.seen("POST", "/apps/hello/builds")).toEqual([]);

    const [upload] = api.seen("POST", "/apps/hello/edge/bundles");
    const code = String(upload?.body);
    // One script: the import is bundled in, the standard library's names resolved.
    expect(code).toContain("hello from the edge");
    expect(code).not.toMatch(/from\s+["']\.\/greeting/);
    const digest = `sha256:${createHash("sha256").update(code).digest("hex")}`;
    expect(upload?.query).toEqual({ digest });

    const [created] = api.seen("POST", "/apps/hello/releases");
    expect(created?.body).toMatchObject({
      edge_bundle: digest,
      deploy: true,
      description: "first",
      config: { app: "hello", edge: { cpu_ms: 20, memory_mb: 128 } },
    });
    expect(created?.body).not.toHaveProperty("image");
    expect(JSON.parse(res.stdout)).toMatchObject({
      app: "hello",
      release: 4,
      status: "succeeded",
      bundle: digest,
      size: Buffer.byteLength(code),
      cpu_ms: 20,
      memory_mb: 128,
      url: expect.stringMatching(/hello/),
    });
  });

  it("refuses --image for an edge app, saying why and what to do, and calls nothing", async () => {
    const before = api.requests.length;
    const res = await runCliIn(home, ["deploy", app, "--image", "nginx:1.27"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("hello is an edge app ([edge] in");
    expect(res.stderr).toContain("there is nothing to run the image nginx:1.27 on");
    expect(res.stderr).toContain("deploy without --image");
    expect(api.requests.length).toBe(before);
  });

  it("deploys the staged secrets before the release, as an image deploy does", async () => {
    platform("succeeded", [
      { name: "API_TOKEN", status: "staged" },
      { name: "OLD", status: "deployed" },
    ]);
    const before = api.seen("POST", "/apps/hello/releases").length;
    const res = await runCliIn(home, ["deploy", app]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("Deployed the staged secrets API_TOKEN\n");
    expect(api.seen("POST", "/apps/hello/secrets").map((r) => r.body)).toEqual([{ values: {} }]);
    // Before the release: the code it releases is deployed with them.
    const order = api.requests.map((r) => `${r.method} ${r.path}`);
    expect(order.lastIndexOf("POST /apps/hello/secrets")).toBeLessThan(
      order.lastIndexOf("POST /apps/hello/releases"),
    );
    expect(api.seen("POST", "/apps/hello/releases")).toHaveLength(before + 1);
  });

  it("sets an edge app's secret without rolling machines: the proxies deploy its code again", async () => {
    const edge = { bundle: `sha256:${"c".repeat(64)}`, cpu_ms: 50, memory_mb: 128 };
    api.reply("POST", "/apps/edger/secrets", {
      version: 2,
      secrets: [{ name: "API_TOKEN", status: "deployed" }],
    });
    api.reply("GET", "/apps/edger/releases", [{ version: 1, status: "succeeded", image: "", edge }]);
    const res = await runCliIn(home, ["secrets", "set", "API_TOKEN=t0ken", "-a", "edger"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("The proxies run edge app edger's code with the new secrets");
    expect(api.seen("POST", "/apps/edger/secrets")[0]?.body).toEqual({ values: { API_TOKEN: "t0ken" } });
    expect(api.seen("POST", "/apps/edger/releases")).toEqual([]);
  });

  it("fails with the release's reason when the platform fails it", async () => {
    platform("failed");
    const res = await runCliIn(home, ["deploy", app]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("Error: release v4 failed: superseded by v5");
    expect(res.stdout).toMatch(/^Bundled index\.js: .*sha256:[0-9a-f]{64}\n/m);
  });

  it("rolls back to an earlier edge release with `hangar releases rollback`", async () => {
    const edge = (c: string) => ({ bundle: `sha256:${c.repeat(64)}`, cpu_ms: 50, memory_mb: 128 });
    api.reply("GET", "/apps/edgy/releases", [
      { version: 2, status: "succeeded", image: "", edge: edge("b") },
      { version: 1, status: "succeeded", image: "", edge: edge("a") },
    ]);
    api.reply(
      "POST",
      "/apps/edgy/releases",
      { version: 3, status: "pending", image: "", edge: edge("a") },
      201,
    );
    api.reply("GET", "/apps/edgy/releases/3", {
      version: 3,
      status: "succeeded",
      image: "",
      edge: edge("a"),
    });
    api.reply("GET", "/apps/edgy/machines", []);
    const res = await runCliIn(home, ["releases", "rollback", "-a", "edgy"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(api.seen("POST", "/apps/edgy/releases")[0]?.body).toEqual({
      rollback_of: 1,
      deploy: true,
      strategy: "immediate",
      description: "rollback to v1",
    });
    expect(res.stdout).toContain(`Release v3 redeploys v1 (its edge bundle ${edge("a").bundle})\n`);
    expect(res.stdout).toContain("Release v3 (v1's edge bundle and config) is live on the edge\n");
  });

  it("refuses to scale an edge app's machines: it has none", async () => {
    const edge = { bundle: `sha256:${"c".repeat(64)}`, cpu_ms: 50, memory_mb: 128 };
    api.reply("GET", "/apps/edger/releases", [{ version: 1, status: "succeeded", image: "", edge }]);
    api.reply("GET", "/apps/edger/machines", []);
    const res = await runCliIn(home, ["scale", "count", "3", "-a", "edger", "--yes"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /^Error: app edger is an edge app: its code runs in every proxy, with no machines to scale\n/,
    );
    expect(api.seen("POST", "/apps/edger/machines")).toEqual([]);
  });
});

// [[statics]] on the whole platform (issue 19, acceptance 5): an image with a public folder is
// deployed with `hangar deploy --image` and a fly.toml naming the folder; the builder takes the
// folder's files out of the image, and the proxy serves them with the app's only machine stopped
// (and leaves it stopped): a file with its type and ETag, 304 for a matching If-None-Match, the
// folder's index_document, 404 for a missing file or a symlink out of the folder, 400 for `..`.
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobStore, ImageRegistry } from "@hangar/oci";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { pushNodeLayerImage } from "../fixtures/node-layer-image.js";
import { until } from "../volumes/volume-app.js";
import { startTestPlatform, type TestPlatform, viaProxy } from "./harness.js";

const APP = "statics-app";
let p: TestPlatform;
let work: string;
let ref: string;

// Every path the machine answers says so: a static file must come from the proxy.
const SERVER_JS = `require("node:http").createServer((req, res) => res.end("from the machine " + req.url)).listen(8080);\n`;

beforeAll(async () => {
  p = await startTestPlatform();
  work = await mkdtemp(join(tmpdir(), "hangar-statics-"));
  await writeFile(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  const root = join(work, "root");
  await mkdir(join(root, "app", "public", "css"), { recursive: true });
  await writeFile(join(root, "app", "server.js"), SERVER_JS);
  await writeFile(join(root, "app", "public", "hello.txt"), "hello from the image\n");
  await writeFile(join(root, "app", "public", "index.html"), "<h1>statics</h1>\n");
  await writeFile(join(root, "app", "public", "css", "site.css"), "body { color: teal }\n");
  await symlink("/etc/passwd", join(root, "app", "public", "passwd"));
  const nc = await p.connectNats();
  try {
    const registry = await ImageRegistry.open(nc, await BlobStore.open(nc));
    const refs = await pushNodeLayerImage(registry, {
      repository: APP,
      root,
      work,
      variants: { v1: { Cmd: ["node", "/app/server.js"], WorkingDir: "/app" } },
    });
    ref = refs.v1;
  } finally {
    await nc.close();
  }
  await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
  await writeFile(
    join(work, "fly.toml"),
    `app = "${APP}"

[http_service]
  internal_port = 8080
  auto_stop_machines = "off"
  auto_start_machines = true
  min_machines_running = 0

[[statics]]
  guest_path = "/app/public"
  url_prefix = "/static"
  index_document = "index.html"
`,
  );
}, 180_000);

afterAll(async () => {
  await p?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("[[statics]]", () => {
  it("are served by the proxy from the image's files while the app's machine is stopped", async () => {
    const deploy = await runHangar(["deploy", "-c", "fly.toml", "--image", ref, "--wait-timeout", "90s"], {
      cwd: work,
      env: { HANGAR_HOME: p.home },
      timeoutMs: 150_000,
    });
    expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
    expect(deploy.stderr).not.toMatch(/statics is not supported/);
    // Until the builder has taken the files out, the machine answers those paths itself.
    await until(async () => {
      const res = await viaProxy(p, APP, "/static/hello.txt");
      expect(res.body).toBe("hello from the image\n");
    }, 60_000);

    const [machine] = await p.api.ok<Array<{ id: string }>>("GET", `/apps/${APP}/machines`);
    if (!machine) throw new Error("the deploy made no machine");
    await p.api.ok("POST", `/apps/${APP}/machines/${machine.id}/stop`);
    await p.api.ok("GET", `/apps/${APP}/machines/${machine.id}/wait?state=stopped&timeout=30`);

    const file = await viaProxy(p, APP, "/static/hello.txt");
    expect(file.status).toBe(200);
    expect(file.body).toBe("hello from the image\n");
    expect(file.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(file.headers["fly-request-id"]).toEqual(expect.any(String));
    const etag = file.headers.etag as string;
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    const again = await viaProxy(p, APP, "/static/hello.txt", "GET", { "if-none-match": etag });
    expect(again.status).toBe(304);
    expect(again.body).toBe("");
    const head = await viaProxy(p, APP, "/static/css/site.css", "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect(head.headers["content-length"]).toBe(String("body { color: teal }\n".length));
    const index = await viaProxy(p, APP, "/static/");
    expect(index.status).toBe(200);
    expect(index.body).toBe("<h1>statics</h1>\n");

    const missing = await viaProxy(p, APP, "/static/missing.txt");
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ status: "not_found" });
    // The symlink in the image is not followed: /etc/passwd is not a static file.
    expect((await viaProxy(p, APP, "/static/passwd")).status).toBe(404);
    for (const path of ["/static/../server.js", "/static/%2e%2e/server.js", "/static/..%2fserver.js"]) {
      const refused = await viaProxy(p, APP, path);
      expect(refused.status, path).toBe(400);
      expect(refused.body).not.toContain("createServer");
    }

    // None of this woke the machine: the proxy answered every request itself.
    const after = await p.api.ok<{ state: string }>("GET", `/apps/${APP}/machines/${machine.id}`);
    expect(after.state).toBe("stopped");
  }, 300_000);
});

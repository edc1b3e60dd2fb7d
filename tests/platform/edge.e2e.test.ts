// Edge apps end to end (issue 21), on one whole platform (every service a real process) with a second
// proxy beside the first (as two workers): the four examples deployed with the real CLI (`hangar deploy`) serve
// through the proxy, their origins Hangar apps (machines of examples/hello, reached as
// `<app>.internal`) and a server in a network namespace of its own playing the internet; console
// lines reach `hangar logs`; a rollback reaches both proxies (timed from the release's append to the
// first answer of the earlier code on each, printed: a test never fails on a duration); an edge app's
// infinite loop gets a 5xx while another app answers; an edge app cannot fetch the gateway's or
// NATS's port on 127.0.0.1; its cache is the same through both proxies.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EVENT_TYPES_HEADER } from "@hangar/eventstore";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar, startHangar } from "../../cli/test/run-cli.js";
import { repoRoot } from "../../scripts/platform.js";
import { helloConfig, type ProxyResponse, startTestPlatform, type TestPlatform } from "./harness.js";
import { type InternetServer, startInternetServer } from "./internet.js";

const CLI_TIMEOUT_MS = 120_000;
let p: TestPlatform;
let internet: InternetServer;
let secondProxyPort: number;
let work: string;
let nc: NatsConnection;

beforeAll(async () => {
  p = await startTestPlatform();
  internet = await startInternetServer();
  // The second proxy runs as two workers: each worker runs the edge apps itself.
  secondProxyPort = (await p.startProxy({ HANGAR_PROXY_WORKERS: "2" })).proxyPort;
  nc = await p.connectNats();
  work = mkdtempSync(join(tmpdir(), "hangar-edge-"));
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  // The origins that are Hangar apps: two machines of examples/hello, told apart by their greeting.
  await Promise.all(["blog", "docs"].map((app) => originApp(app)));
}, 180_000);

afterAll(async () => {
  await nc?.close();
  await internet?.close();
  await p?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function originApp(app: string): Promise<void> {
  await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  const m = await p.api.ok<{ id: string }>("POST", `/apps/${app}/machines`, {
    config: helloConfig({ env: { GREETING: app } }),
  });
  const waited = await p.api.call("GET", `/apps/${app}/machines/${m.id}/wait?state=started&timeout=60`);
  expect(waited.status, JSON.stringify(waited.body)).toBe(200);
}

function hangar(args: string[], cwd = work) {
  return runHangar(args, { cwd, env: { HANGAR_HOME: p.home }, timeoutMs: CLI_TIMEOUT_MS });
}

/** Copies an example (or writes `files`) into the work folder as app `app`, with `env` as its [env]. */
function appDir(
  app: string,
  from: string | Record<string, string>,
  env: Record<string, string> = {},
): string {
  const dir = join(work, app);
  if (typeof from === "string") cpSync(join(repoRoot, "examples", from), dir, { recursive: true });
  else {
    cpSync(join(repoRoot, "examples", "edge-hello"), dir, { recursive: true });
    for (const [name, text] of Object.entries(from)) writeFileSync(join(dir, name), text);
  }
  const vars = Object.entries(env).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  writeFileSync(
    join(dir, "hangar.toml"),
    [`app = "${app}"`, "", "[edge]", 'entry = "index.js"', "", "[env]", ...vars, ""].join("\n"),
  );
  return dir;
}

/** `hangar deploy` of the folder's edge app (created first); the release's version. */
async function deploy(app: string, dir: string, create = true): Promise<number> {
  if (create) await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  const res = await hangar(["deploy", "--json"], dir);
  expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  return (JSON.parse(res.stdout) as { release: number }).release;
}

/** A request through a proxy (the platform's unless `port`), as `<app>.localhost`. */
function get(app: string, path = "/", port = p.proxyPort): Promise<ProxyResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, headers: { host: `${app}.localhost:${port}` }, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject).end();
  });
}

/** Asks until `ok` holds of the answer (the release has reached that proxy), at most 10 s. */
async function until(app: string, path: string, ok: (r: ProxyResponse) => boolean, port = p.proxyPort) {
  let last: ProxyResponse | undefined;
  for (let i = 0; i < 200; i++) {
    last = await get(app, path, port).catch(() => undefined);
    if (last && ok(last)) return last;
    await sleep(50);
  }
  throw new Error(`${app}${path} never answered as expected; last: ${JSON.stringify(last)}`);
}

describe("the four examples, deployed with hangar deploy, through the proxy", () => {
  it("hello world answers on both proxies", async () => {
    await deploy("edge-hello", appDir("edge-hello", "edge-hello"));
    for (const port of [p.proxyPort, secondProxyPort]) {
      const res = await until("edge-hello", "/", (r) => r.status === 200, port);
      expect(res.body).toBe("Hello World\n");
      expect(res.headers.via).toBe("1.1 hangar");
    }
  });

  it("the router mounts two Hangar apps and the internet's static site on one hostname", async () => {
    await deploy(
      "edge-router",
      appDir("edge-router", "edge-router", {
        BLOG_ORIGIN: "http://blog.internal:8080",
        DOCS_ORIGIN: "http://docs.internal",
        STATIC_ORIGIN: internet.url,
      }),
    );
    const blog = await until("edge-router", "/blog/post-1", (r) => r.status === 200);
    expect(JSON.parse(blog.body)).toMatchObject({ hello: "blog", path: "/post-1" });
    const docs = await get("edge-router", "/docs/intro");
    expect(JSON.parse(docs.body)).toMatchObject({ hello: "docs", path: "/intro" });
    // Through the second proxy's workers too (each fetches .internal through its own listener).
    for (let i = 0; i < 4; i++) {
      const viaWorker = await until("edge-router", "/docs/x", (r) => r.status === 200, secondProxyPort);
      expect(JSON.parse(viaWorker.body)).toMatchObject({ hello: "docs", path: "/x" });
    }
    const site = await get("edge-router", "/index.html");
    expect(JSON.parse(site.body)).toMatchObject({
      origin: "internet",
      path: "/index.html",
      host: internet.url.replace("http://", ""),
      forwarded_host: `edge-router.localhost:${p.proxyPort}`,
    });
  });

  it("the origin proxy sends plain HTTP to HTTPS, and (told not to) proxies to its origin on the internet", async () => {
    await deploy("edge-origin", appDir("edge-origin", "edge-origin", { ORIGIN: internet.url }));
    const redirect = await until("edge-origin", "/a?b=1", (r) => r.status === 301);
    expect(redirect.headers.location).toBe(`https://edge-origin.localhost:${p.proxyPort}/a?b=1`);
    await deploy(
      "edge-origin-open",
      appDir("edge-origin-open", "edge-origin", { ORIGIN: internet.url, FORCE_HTTPS: "false" }),
    );
    const proxied = await until("edge-origin-open", "/a?b=1", (r) => r.status === 200);
    expect(JSON.parse(proxied.body)).toMatchObject({ origin: "internet", path: "/a?b=1" });
    // The example's proxy() adds its header to what the origin gets.
    expect(JSON.parse(proxied.body)).toMatchObject({ served_by: "edge-origin" });
  });

  it("the balancer spreads requests over its three origins", async () => {
    await deploy(
      "edge-balancer",
      appDir("edge-balancer", "edge-balancer", {
        ORIGINS: `http://blog.internal,http://docs.internal,${internet.url}`,
      }),
    );
    await until("edge-balancer", "/", (r) => r.status === 200);
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const res = await get("edge-balancer", "/");
      expect(res.status).toBe(200);
      const body = JSON.parse(res.body) as { hello?: string; origin?: string };
      seen.add(body.hello ?? body.origin ?? "?");
    }
    expect([...seen].sort()).toEqual(["blog", "docs", "internet"]);
    const stats = JSON.parse((await get("edge-balancer", "/_balancer")).body) as Array<{ requests: number }>;
    expect(stats).toHaveLength(3);
  });
});

describe("an edge app in the platform", () => {
  it("prints its console lines in hangar logs", async () => {
    const logs = startHangar(["logs", "-a", "edge-hello"], {
      env: { HANGAR_HOME: p.home },
      timeoutMs: 60_000,
    });
    try {
      // The CLI is following once the lines asked for below come out.
      for (let i = 0; i < 200 && !logs.output().stdout.includes("GET /from-the-test"); i++) {
        await get("edge-hello", "/from-the-test");
        await sleep(100);
      }
      // flyctl's shape: `<time> app[<instance>] <region> [<level>] <line>`, the proxy as the instance.
      expect(logs.output().stdout).toMatch(/ app\[edge-[^\]]+\] local \[info\] GET \/from-the-test/);
    } finally {
      logs.child.kill("SIGINT");
      await logs.exited;
    }
  });

  it("rolls back on both proxies (timed from the release's append to the earlier code's first answer)", async () => {
    const app = "edge-roll";
    const dir = appDir(app, { "index.js": 'fly.http.respondWith(() => new Response("v1"));\n' });
    const v1 = await deploy(app, dir);
    writeFileSync(join(dir, "index.js"), 'fly.http.respondWith(() => new Response("v2"));\n');
    await deploy(app, dir, false);
    const ports = [p.proxyPort, secondProxyPort];
    for (const port of ports) await until(app, "/", (r) => r.body === "v2", port);

    // The append is when the new release's message reaches NATS subscribers: JetStream stores it first.
    let appendedAt = 0;
    const sub = nc.subscribe(`ev.release.${app}`, {
      callback: (_err, msg) => {
        if (msg.headers?.get(EVENT_TYPES_HEADER).includes("ReleaseCreated")) appendedAt ||= performance.now();
      },
    });
    await nc.flush();
    const served: number[] = [];
    const polling = ports.map(async (port, i) => {
      for (let n = 0; n < 2_000; n++) {
        const res = await get(app, "/", port).catch(() => undefined);
        if (res?.body === "v1" && appendedAt > 0) {
          served[i] = performance.now();
          return;
        }
        await sleep(5);
      }
    });
    const rollback = await hangar(["releases", "rollback", String(v1), "-a", app, "--json"], work);
    expect(rollback.code, `${rollback.stdout}\n${rollback.stderr}`).toBe(0);
    await Promise.all(polling);
    sub.unsubscribe();
    expect(served).toHaveLength(2);
    const ms = served.map((t) => Math.round(t - appendedAt));
    process.stderr.write(
      `[edge.e2e] rollback: the earlier code answered on the two proxies ${ms.join(" and ")} ms after the release's append\n`,
    );
    // Each proxy (and each of the second's workers) serves the earlier code from now on.
    for (const port of [...ports, ...ports, ...ports]) expect((await get(app, "/", port)).body).toBe("v1");
  });

  it("stops an infinite loop with a 5xx while another app answers, cannot fetch the gateway or NATS, shares its cache", async () => {
    const app = "edge-probe";
    await deploy(
      app,
      appDir(app, {
        "index.js": `fly.http.respondWith(async (req) => {
  const url = new URL(req.url);
  if (url.pathname === "/loop") for (;;) {}
  if (url.pathname === "/cache") {
    const value = url.searchParams.get("set");
    if (value) await fly.cache.set("k", value);
    return new Response(String(await fly.cache.getString("k")));
  }
  const target = url.searchParams.get("url");
  try {
    const res = await fetch(target);
    return new Response("fetched " + res.status + " " + (await res.text()));
  } catch (err) {
    return new Response("refused " + String((err && err.message) || err));
  }
});
`,
      }),
    );
    await until(app, `/?url=${encodeURIComponent(internet.url)}`, (r) => r.body.startsWith("fetched 200"));

    const loop = get(app, "/loop");
    const meanwhile = await Promise.all(Array.from({ length: 5 }, () => get("edge-hello", "/")));
    expect(meanwhile.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const stopped = await loop;
    expect(stopped.status).toBeGreaterThanOrEqual(500);
    expect(JSON.parse(stopped.body)).toMatchObject({ status: "cpu_limit" });

    const gatewayPort = new URL(p.apiUrl).port;
    const natsPort = new URL(p.nats.url).port;
    for (const target of [
      `http://127.0.0.1:${gatewayPort}/v1/apps`,
      `http://127.0.0.1:${natsPort}/`,
      `http://localhost:${gatewayPort}/`,
    ]) {
      const res = await get(app, `/?url=${encodeURIComponent(target)}`);
      expect(res.body, target).toMatch(/^refused .*may not fetch/);
    }
    // Its cache is one for every proxy (and worker): set through one, read through the other.
    expect((await get(app, "/cache?set=shared")).body).toBe("shared");
    for (let i = 0; i < 3; i++) expect((await get(app, "/cache", secondProxyPort)).body).toBe("shared");

    // The app's code still serves after the loop was stopped.
    expect((await get(app, `/?url=${encodeURIComponent(internet.url)}`)).body).toMatch(/^fetched 200/);
  });
});

// The proxy as several worker processes (HANGAR_PROXY_WORKERS=2, node:cluster), on a whole platform:
// the workers together never put more requests on a machine than its hard_limit (each holds half),
// the first process's /metrics sums every worker's, its /health says all serve, and each worker
// reports its load to the autoscaler under an id of its own (the scheduler sums proxies' samples).
import { setTimeout as sleep } from "node:timers/promises";
import { subjects } from "@hangar/service";
import { afterAll, beforeAll, expect, it } from "vitest";
import { scaledHelloConfig, startTestPlatform, type TestPlatform, viaProxy } from "./harness.js";

const HARD = 4;
const REQUESTS = 16;
let p: TestPlatform;

beforeAll(async () => {
  p = await startTestPlatform({ env: { proxy: { HANGAR_PROXY_WORKERS: "2" } } });
}, 120_000);

afterAll(async () => {
  await p?.close();
});

it("keeps a machine under its hard_limit across workers, sums their metrics and reports each one's load", async () => {
  const app = "workers";
  await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  const m = await p.api.ok<{ id: string }>("POST", `/apps/${app}/machines`, {
    config: scaledHelloConfig({ soft: 2, hard: HARD, max: 1 }),
  });
  const waited = await p.api.call("GET", `/apps/${app}/machines/${m.id}/wait?state=started&timeout=60`);
  expect(waited.status, JSON.stringify(waited.body)).toBe(200);
  for (let i = 0; i < 100 && (await viaProxy(p, app).catch(() => undefined))?.status !== 200; i++) {
    await sleep(100);
  }

  const nc = await p.connectNats();
  const reporters = new Set<string>();
  const sub = nc.subscribe(subjects.load(app), {
    callback: (_err, msg) => {
      reporters.add((msg.json() as { proxy_id: string }).proxy_id);
    },
  });
  try {
    // Each request on a connection of its own: the first process hands them to both workers.
    const answers = await Promise.all(Array.from({ length: REQUESTS }, () => viaProxy(p, app, "/?hold=300")));
    expect(answers.map((a) => a.status)).toEqual(Array(REQUESTS).fill(200));
    const most = Math.max(
      ...answers.map((a) => (JSON.parse(a.body) as { max_in_flight: number }).max_in_flight),
    );
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(HARD);

    const health = (await (await fetch(p.services.proxy.healthUrl)).json()) as {
      ok: boolean;
      workers: number;
    };
    expect(health).toMatchObject({ ok: true, workers: 2 });
    const metrics = await (await fetch(new URL("/metrics", p.services.proxy.healthUrl))).text();
    const served = metrics
      .split("\n")
      .filter((l) => l.startsWith("hangar_proxy_requests_total{") && l.includes(`app="${app}"`))
      .filter((l) => l.includes('status_class="2xx"'))
      .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
    // One worker alone took about half of them.
    expect(served).toBeGreaterThanOrEqual(REQUESTS);

    for (let i = 0; i < 50 && reporters.size < 2; i++) await sleep(100);
    expect([...reporters].map((id) => id.replace(/.*-(w\d+)$/, "$1")).sort()).toEqual(["w0", "w1"]);
  } finally {
    sub.unsubscribe();
    await nc.close();
  }
});

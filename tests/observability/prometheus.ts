// Acceptance 4: a real Prometheus (Debian's) scrapes every service's /metrics of a running platform
// that serves one app (examples/hello, built and deployed with `hangar deploy`, answering requests
// through the proxy, scaled up by the autoscaler under held load), and every PromQL query of the
// generated Grafana dashboards returns series for that app; the platform-wide ones (NATS consumers,
// build steps) return any series. The app has its own random name, so the check runs on a platform
// other checks share.
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type PrometheusServer, startPrometheus } from "@hangar/testkit";
import { expect } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { type DashboardQuery, dashboards, promQueries } from "../../scripts/grafana-dashboards.js";
import { helloDir, type TestPlatform, viaProxy } from "../platform/harness.js";
import { HeldLoad } from "../platform/held-load.js";

const DEPLOY_TIMEOUT_MS = 360_000;
/** How long the autoscaler may take to decide under load (its panic window is 6 s by default). */
const DECISION_TIMEOUT_MS = 60_000;
/** How long every query may take to answer with series once the platform did its part (a few scrapes). */
const SERIES_TIMEOUT_MS = 60_000;

/**
 * Grafana's variables as the check substitutes them: the app, and the intervals Grafana would compute
 * for a 1 s scrape interval (a rate window must hold two scrapes).
 */
function substitute(expr: string, app: string): string {
  const vars: Record<string, string> = { app, __rate_interval: "1m", __interval: "15s", __range: "1h" };
  const out = expr.replace(/\$(\w+)/g, (_whole, name: string) => {
    const value = vars[name];
    if (value === undefined) throw new Error(`query ${expr} names $${name}, which the check does not know`);
    return value;
  });
  expect(out, "no variable left").not.toMatch(/\$/);
  return out;
}

/** Every dashboard's PromQL queries with the app substituted, and whether each needs the app's label. */
function queriesFor(app: string): (DashboardQuery & { promql: string; perApp: boolean })[] {
  return Object.values(dashboards()).flatMap((d) =>
    promQueries(d).map((q) => ({ ...q, promql: substitute(q.expr, app), perApp: q.expr.includes("$app") })),
  );
}

/** Deploys examples/hello as `app` with the CLI (a build through the builder), in `work`. */
async function deploy(p: TestPlatform, app: string, work: string): Promise<void> {
  const dir = join(work, "app");
  cpSync(helloDir, dir, { recursive: true });
  const home = join(work, "home");
  mkdirSync(home);
  writeFileSync(
    join(home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  const env = { HANGAR_HOME: home };
  const launch = await runHangar(["launch", "--name", app, "--yes", "--no-deploy"], {
    cwd: dir,
    env,
    timeoutMs: 60_000,
  });
  expect(launch.code, launch.stderr + launch.stdout).toBe(0);
  // One machine always running: with launch's default of 0 the autoscaler may stop the new machine
  // (no load over its stable window) before a slow host has it pass its checks.
  const toml = join(dir, "hangar.toml");
  const config = readFileSync(toml, "utf8");
  expect(config).toContain("min_machines_running = 0");
  writeFileSync(toml, config.replace("min_machines_running = 0", "min_machines_running = 1"));
  // A loaded host (a CI runner, the shared platform run) may take over the default minute to start it.
  const deployed = await runHangar(["deploy", "--json", "--wait-timeout", "3m"], {
    cwd: dir,
    env,
    timeoutMs: DEPLOY_TIMEOUT_MS,
  });
  if (deployed.code !== 0) {
    // What the app printed says why its machine did not pass.
    const logs = await runHangar(["logs", "-a", app, "--no-tail"], { cwd: dir, env, timeoutMs: 30_000 });
    expect(
      deployed.code,
      `${deployed.stderr}${deployed.stdout}\napp logs:\n${logs.stdout.slice(-3000)}`,
    ).toBe(0);
  }
  expect((JSON.parse(deployed.stdout) as { status: string }).status).toBe("succeeded");
}

/** Holds 60 requests open through the proxy (soft_limit 20: three machines' worth) until the autoscaler decides. */
async function loadUntilScaled(p: TestPlatform, app: string): Promise<void> {
  const load = new HeldLoad({ proxyPort: p.proxyPort, app, clients: 60, holdMs: 500 });
  try {
    const deadline = Date.now() + DECISION_TIMEOUT_MS;
    for (;;) {
      const scaling = await p.api.ok<{ decisions_total: number }>("GET", `/apps/${app}/scaling?limit=1`);
      if (scaling.decisions_total > 0) break;
      if (Date.now() > deadline)
        throw new Error(`no autoscaler decision for ${app} in ${DECISION_TIMEOUT_MS} ms`);
      await sleep(500);
    }
  } finally {
    await load.stop();
  }
  expect(load.answers.filter((a) => a.status === 200).length).toBeGreaterThan(0);
}

/** Waits until every query answers with at least one series, failing with the ones that never did. */
async function expectSeries(prom: PrometheusServer, queries: ReturnType<typeof queriesFor>): Promise<void> {
  const deadline = Date.now() + SERIES_TIMEOUT_MS;
  let empty = queries;
  for (;;) {
    const answers = await Promise.all(empty.map(async (q) => ({ q, series: await prom.query(q.promql) })));
    empty = answers.filter((a) => a.series.length === 0).map((a) => a.q);
    if (empty.length === 0) return;
    if (Date.now() > deadline) {
      const targets = await prom.targets();
      throw new Error(
        `queries without series after ${SERIES_TIMEOUT_MS} ms:\n${empty
          .map((q) => `  ${q.panel} ${q.refId}: ${q.promql}`)
          .join("\n")}\nscrape targets: ${JSON.stringify(targets)}`,
      );
    }
    await sleep(1_000);
  }
}

/** Acceptance 4: every dashboard query answers for one app of platform `p`, scraped by a real Prometheus. */
export async function checkDashboardQueries(p: TestPlatform): Promise<void> {
  const app = `metrics-${randomBytes(3).toString("hex")}`;
  const work = mkdtempSync(join(tmpdir(), "hangar-prometheus-check-"));
  // Every service's ops server (for the gateway, its API port), one job each.
  const jobs = Object.fromEntries(
    Object.values(p.services).map((s) => [s.name, [new URL(s.healthUrl).host]]),
  );
  const prom = await startPrometheus({ jobs, scrapeIntervalS: 1 });
  try {
    await deploy(p, app, work);
    for (let i = 0; i < 20; i++) expect((await viaProxy(p, app)).status).toBe(200);
    await loadUntilScaled(p, app);

    // Prometheus hands its static targets to the scrape manager some seconds after it starts (its
    // discovery updates are throttled to one per 5 s), and "unknown" is a target not scraped yet (a
    // loaded machine delays its first scrapes): wait until every job is listed and scraped once, up to
    // a minute, then each must be up.
    const pending = (targets: Awaited<ReturnType<typeof prom.targets>>) =>
      targets.length < Object.keys(jobs).length || targets.some((t) => t.health === "unknown");
    let targets = await prom.targets();
    for (let waited = 0; pending(targets) && waited < 60; waited++) {
      await sleep(1_000);
      targets = await prom.targets();
    }
    expect(
      targets.filter((t) => t.health !== "up"),
      "every service's /metrics is scraped",
    ).toEqual([]);
    expect(targets.map((t) => t.job).sort()).toEqual(Object.keys(jobs).sort());

    const queries = queriesFor(app);
    expect(queries.length).toBeGreaterThan(0);
    await expectSeries(prom, queries);
    // The per-app queries answer for this app only: another app's name gets nothing from them.
    const other = queriesFor(`none-${app}`).filter((q) => q.perApp);
    for (const q of other) expect(await prom.query(q.promql), q.promql).toEqual([]);
    process.stdout.write(
      `dashboard queries: ${queries.length} PromQL queries (${queries.filter((q) => q.perApp).length} per app) each answered with series for ${app}\n`,
    );
  } finally {
    await prom.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

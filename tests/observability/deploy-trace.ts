// Acceptance 3: `hangar deploy` yields one trace, with spans from the CLI, the gateway, the builder,
// the scheduler's release orchestrator, placement and the host agent (and its checks), each parented correctly, as an OTLP receiver in the
// test sees them. The platform must export to that receiver (startTestPlatform({ allEnv:
// receiver.env() })); the app has its own random name, so the check runs on a platform other checks share.
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { helloDir, type TestPlatform } from "../platform/harness.js";
import type { OtlpReceiver, ReceivedSpan } from "./otlp-receiver.js";

const DEPLOY_TIMEOUT_MS = 240_000;
/** How long the spans of the deploy may take to arrive once it ended (batches of 0.5 s, a few hops). */
const ARRIVAL_TIMEOUT_MS = 30_000;

/** One trace's spans, indexed by span id. */
class Trace {
  readonly byId: Map<string, ReceivedSpan>;
  constructor(readonly spans: ReceivedSpan[]) {
    this.byId = new Map(spans.map((s) => [s.spanId, s]));
  }

  /** Spans whose parent is not in the trace (a root has none): empty when every hop was exported. */
  orphans(): ReceivedSpan[] {
    return this.spans.filter((s) => s.parentSpanId !== "" && !this.byId.has(s.parentSpanId));
  }

  /** The span's ancestors, nearest first. */
  ancestors(span: ReceivedSpan): ReceivedSpan[] {
    const out: ReceivedSpan[] = [];
    for (let p = this.byId.get(span.parentSpanId); p; p = this.byId.get(p.parentSpanId)) out.push(p);
    return out;
  }

  find(service: string, name: string | RegExp): ReceivedSpan[] {
    return this.spans.filter(
      (s) => s.service === service && (typeof name === "string" ? s.name === name : name.test(s.name)),
    );
  }

  /** Each span as "service: name <- n ancestors", for a failure's message. */
  describe(): string {
    return this.spans
      .map((s) => `${s.service}: ${s.name} <- ${this.ancestors(s).length} ancestors`)
      .join("\n");
  }
}

/** Whether an ancestor of `span` made by `service` is named like `name`. */
function underService(t: Trace, span: ReceivedSpan, service: string, name: RegExp): boolean {
  return t.ancestors(span).some((a) => a.service === service && name.test(a.name));
}

/** What a complete deploy trace has; a list of what is missing, empty when complete. */
function missing(t: Trace, cliRoot: ReceivedSpan | undefined): string[] {
  const gaps: string[] = [];
  if (!cliRoot) return ["the CLI's root span `hangar deploy`"];
  if (t.orphans().length > 0)
    gaps.push(`spans whose parent has not arrived: ${t.orphans().map((s) => s.name)}`);
  const builds = t.find("hangar-builder", "build");
  if (builds.length !== 1) gaps.push(`one builder span \`build\` (${builds.length})`);
  if (t.find("hangar-builder", /^step \d+$/).length === 0) gaps.push("the builder's step spans");
  if (t.find("hangar-placement", "placement decide").length === 0) gaps.push("placement's decision span");
  if (t.find("hangar-host-agent", "machine start").length === 0)
    gaps.push("the host agent's machine start span");
  if (t.find("hangar-host-agent", /^check /).length === 0) gaps.push("the host agent's check spans");
  return gaps;
}

/**
 * Deploys examples/hello with `hangar deploy --json` (a real build, a release, a machine that passes
 * its check) and checks the one trace it names.
 */
export async function checkDeployTrace(p: TestPlatform, otlp: OtlpReceiver): Promise<void> {
  const app = `trace-${randomBytes(3).toString("hex")}`;
  const work = mkdtempSync(join(tmpdir(), "hangar-deploy-trace-"));
  try {
    const dir = join(work, "app");
    cpSync(helloDir, dir, { recursive: true });
    const cliHome = join(work, "home");
    mkdirSync(cliHome);
    writeFileSync(
      join(cliHome, "local.json"),
      JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
    );
    const env = { HANGAR_HOME: cliHome, ...otlp.env() };
    const launch = await runHangar(["launch", "--name", app, "--yes", "--no-deploy"], {
      cwd: dir,
      env,
      timeoutMs: 60_000,
    });
    expect(launch.code, launch.stderr + launch.stdout).toBe(0);
    // One machine stays up: on a slow host the autoscaler must not stop it before it passes its check.
    const toml = join(dir, "hangar.toml");
    writeFileSync(
      toml,
      readFileSync(toml, "utf8").replace("min_machines_running = 0", "min_machines_running = 1"),
    );
    const deploy = await runHangar(["deploy", "--json"], { cwd: dir, env, timeoutMs: DEPLOY_TIMEOUT_MS });
    if (deploy.code !== 0) {
      // What the app printed says why its machine did not stay up.
      const logs = await runHangar(["logs", "-a", app, "--no-tail"], { cwd: dir, env, timeoutMs: 30_000 });
      // And what its trace shows so far.
      const traceId = /"trace_id": "([0-9a-f]{32})"/.exec(deploy.stdout)?.[1];
      await sleep(3_000);
      const spans = new Trace(otlp.spans().filter((s) => s.traceId === traceId)).describe();
      throw new Error(
        `deploy failed:\n${deploy.stderr}${deploy.stdout}\nthe app's output:\n${logs.stdout}${logs.stderr}\nits trace:\n${spans}`,
      );
    }
    const outcome = JSON.parse(deploy.stdout) as { status: string; trace_id: string };
    expect(outcome.status).toBe("succeeded");
    expect(outcome.trace_id).toMatch(/^[0-9a-f]{32}$/);
    // With --json the progress, the trace id among it, goes to stderr.
    expect(deploy.stderr).toContain(`Trace ${outcome.trace_id}`);

    let t = new Trace([]);
    let cliRoot: ReceivedSpan | undefined;
    const deadline = Date.now() + ARRIVAL_TIMEOUT_MS;
    for (;;) {
      t = new Trace(otlp.spans().filter((s) => s.traceId === outcome.trace_id));
      cliRoot = t.find("hangar-cli", "hangar deploy")[0];
      const gaps = missing(t, cliRoot);
      if (gaps.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(`the deploy's trace lacks ${gaps.join("; ")}. It has:\n${t.describe()}`);
      }
      await sleep(250);
    }
    expect(otlp.rejected()).toEqual([]);
    expect(cliRoot?.parentSpanId).toBe("");
    expect(t.spans.filter((s) => s.parentSpanId === "")).toEqual([cliRoot]);
    const services = new Set(t.spans.map((s) => s.service));
    for (const s of [
      "hangar-cli",
      "hangar-gateway",
      "hangar-scheduler",
      "hangar-builder",
      "hangar-placement",
      "hangar-host-agent",
    ]) {
      expect(services, `spans of ${s}`).toContain(s);
    }

    // The build: under the gateway's POST of the build, under the CLI's build phase; its steps under it.
    const [build] = t.find("hangar-builder", "build");
    if (!build) throw new Error("no build span");
    expect(build.attributes["hangar.app"]).toBe(app);
    expect(underService(t, build, "hangar-gateway", /^POST .*\/builds$/)).toBe(true);
    expect(underService(t, build, "hangar-cli", /^build$/)).toBe(true);
    for (const step of t.find("hangar-builder", /^step \d+$/))
      expect(t.byId.get(step.parentSpanId)).toBe(build);

    // Placement and the machine's start: the platform carries the release out (the scheduler's release
    // orchestrator), under the gateway's POST of the release, in the CLI's release phase.
    const underRelease = (span: ReceivedSpan) =>
      underService(t, span, "hangar-scheduler", /^release create machine$/) &&
      underService(t, span, "hangar-gateway", /^POST .*\/releases$/) &&
      underService(t, span, "hangar-cli", /^release$/);
    for (const placed of t.find("hangar-placement", "placement decide")) {
      expect(placed.attributes["hangar.app"]).toBe(app);
      expect(underRelease(placed), t.describe()).toBe(true);
    }
    const starts = t.find("hangar-host-agent", "machine start");
    for (const start of starts) {
      expect(start.statusCode).not.toBe(2);
      expect(underRelease(start), t.describe()).toBe(true);
    }
    // The checks: each under its machine's start, ended by a pass.
    for (const check of t.find("hangar-host-agent", /^check /)) {
      expect(starts).toContain(t.ancestors(check).find((a) => a.name === "machine start"));
      expect(check.statusCode).not.toBe(2);
    }
  } finally {
    await p.api.call("DELETE", `/apps/${app}?force=true`).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

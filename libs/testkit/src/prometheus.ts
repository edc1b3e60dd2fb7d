import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findBinary } from "./binaries.js";
import { ServerStartError } from "./errors.js";
import { cleanupOnExit } from "./exit-cleanup.js";
import { poll } from "./poll.js";
import { freePort } from "./ports.js";

export interface PrometheusOptions {
  /** Scrape jobs: each job's `/metrics` targets as host:port. */
  jobs: Record<string, string[]>;
  /** Scrape (and evaluation) interval, in seconds; default 1. */
  scrapeIntervalS?: number;
}

/** One series of an instant query's answer. */
export interface PromSeries {
  metric: Record<string, string>;
  /** The sample's value as Prometheus writes it ("1", "0.25", "NaN"). */
  value: string;
}

/** The state of one scrape target, as /api/v1/targets reports it. */
export interface PromTarget {
  job: string;
  instance: string;
  health: "up" | "down" | "unknown";
  lastError: string;
}

export interface PrometheusServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Runs an instant PromQL query now; rejects with Prometheus' error for a bad query. */
  query(expr: string): Promise<PromSeries[]>;
  /** Every scrape target and whether its last scrape worked. */
  targets(): Promise<PromTarget[]>;
  /** Stops Prometheus and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

/** YAML of a Prometheus configuration scraping `jobs` every `intervalS` seconds (JSON is YAML). */
export function prometheusConfig(jobs: Record<string, string[]>, intervalS: number): string {
  return JSON.stringify({
    global: { scrape_interval: `${intervalS}s`, evaluation_interval: `${intervalS}s` },
    scrape_configs: Object.entries(jobs).map(([job, targets]) => ({
      job_name: job,
      static_configs: [{ targets }],
    })),
  });
}

/**
 * Starts Debian's `prometheus` on a free loopback port with its TSDB in a temp dir, scraping `jobs`,
 * and resolves once it is ready.
 */
export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  const binary = findBinary("prometheus");
  const dir = mkdtempSync(join(tmpdir(), "hangar-prometheus-"));
  const config = join(dir, "prometheus.yml");
  writeFileSync(config, prometheusConfig(opts.jobs, opts.scrapeIntervalS ?? 1));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const forget = cleanupOnExit(() => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    forget();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await poll(
      async () => {
        if (child.exitCode !== null) throw new ServerStartError("prometheus", `exited at start: ${stderr}`);
        const res = await fetch(`${url}/-/ready`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      { what: "prometheus to be ready", timeoutMs: 30_000, intervalMs: 100 },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}/api/v1/${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    url,
    async query(expr) {
      const data = await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
        `query?query=${encodeURIComponent(expr)}`,
      );
      return data.result.map((r) => ({ metric: r.metric, value: r.value[1] }));
    },
    async targets() {
      const data = await api<{
        activeTargets: { labels: Record<string, string>; health: PromTarget["health"]; lastError: string }[];
      }>("targets");
      return data.activeTargets.map((t) => ({
        job: t.labels.job ?? "",
        instance: t.labels.instance ?? "",
        health: t.health,
        lastError: t.lastError,
      }));
    },
    stop,
  };
}

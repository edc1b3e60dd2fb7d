import type { MachineEntry } from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import parsePrometheusTextFormat from "parse-prometheus-text-format";

/**
 * A machine config's `metrics` (fly.toml [[metrics]]: Fly's api.MachineMetrics): where the machine
 * serves Prometheus metrics.
 */
interface MetricsTarget {
  port: number;
  path: string;
  https: boolean;
}

/** A parsed family, as parse-prometheus-text-format (prom2json's shape) gives it. */
interface Family {
  name: string;
  help?: string;
  type: string;
  metrics: Sample[];
}
interface Sample {
  value?: string;
  labels?: Record<string, string>;
  buckets?: Record<string, string>;
  quantiles?: Record<string, string>;
  count?: string;
  sum?: string;
}

/** The labels every scraped series gets, as Fly's managed Prometheus names them. */
const TARGET_LABELS = ["app", "instance", "region", "process_group"] as const;

export interface AppMetricsOptions {
  /** The machines to scrape from: the monitor's view of MACHINES. */
  machines(): Iterable<MachineEntry>;
  /** How often every target is scraped (default 15 s, Fly's interval). */
  intervalMs?: number;
  /** A scrape that has not answered by then counts as down (default 5 s). */
  timeoutMs?: number;
  /** A body larger than this is refused, read no further (default 4 MiB). */
  maxBytes?: number;
  /** A target serving more samples than this is down, its series dropped (Prometheus' sample_limit; default 10,000). */
  maxSamples?: number;
  /** Scrapes in flight at once (default 32). */
  concurrency?: number;
  logger?: Logger;
}

interface Scraped {
  labels: Record<(typeof TARGET_LABELS)[number], string>;
  target: string;
  up: boolean;
  seconds: number;
  error: string;
  families: Family[];
}

/**
 * The `metrics` of a machine config and its process group (one parse), or undefined when it has no
 * metrics port.
 */
export function metricsTarget(configJson: string): (MetricsTarget & { processGroup: string }) | undefined {
  let config:
    | {
        metrics?: { port?: unknown; path?: unknown; https?: unknown } | null;
        env?: Record<string, unknown> | null;
        metadata?: Record<string, unknown> | null;
      }
    | undefined;
  try {
    config = JSON.parse(configJson || "{}");
  } catch {
    return undefined;
  }
  const m = config?.metrics;
  if (!m || typeof m.port !== "number" || !Number.isInteger(m.port) || m.port < 1 || m.port > 65535)
    return undefined;
  const path = typeof m.path === "string" && m.path !== "" ? m.path : "/metrics";
  const group = config?.metadata?.fly_process_group ?? config?.env?.FLY_PROCESS_GROUP;
  return {
    port: m.port,
    path: path.startsWith("/") ? path : `/${path}`,
    https: m.https === true,
    processGroup: typeof group === "string" ? group : "",
  };
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^[+-]?(Inf|inf|NaN|nan|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
/** The monitor's own series about each target: an app's family of these names would spoof them. */
const RESERVED_PREFIX = "hangar_app_scrape_";

/** Reads a response's body as text, or undefined as soon as it is over `max` bytes (the read is cut). */
async function readCapped(res: Response, max: number): Promise<string | undefined> {
  const length = Number(res.headers.get("content-length") ?? "0");
  if (length > max || !res.body) {
    await res.body?.cancel();
    return length > max ? undefined : "";
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * The families of one target if every name, label and value is one the text format allows (the parser
 * is lenient), no family uses the monitor's own names, and there are at most `maxSamples` samples;
 * else why not, and the target is down: one app's page never makes /metrics/apps unreadable.
 */
function checkFamilies(families: Family[], maxSamples: number): Family[] | string {
  let samples = 0;
  const value = (v: string | undefined) => v === undefined || VALUE.test(v);
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) return `metric name ${JSON.stringify(f.name)} is not valid`;
    if (f.name.startsWith(RESERVED_PREFIX)) return `metric name ${f.name} is the monitor's own`;
    if (!TYPES.has(f.type.toLowerCase())) return `metric ${f.name} has type ${f.type}`;
    for (const m of f.metrics) {
      samples += 1 + Object.keys(m.buckets ?? {}).length + Object.keys(m.quantiles ?? {}).length;
      if (samples > maxSamples) return `more than ${maxSamples} samples`;
      // exported_<name> is where the monitor moves an app's own app, instance... label: not the app's to use.
      for (const k of Object.keys(m.labels ?? {})) {
        if (!LABEL_NAME.test(k) || k.startsWith("exported_"))
          return `metric ${f.name} has label name ${JSON.stringify(k)}`;
      }
      const numbers = [
        m.value,
        m.sum,
        m.count,
        ...Object.values(m.buckets ?? {}),
        ...Object.values(m.quantiles ?? {}),
      ];
      if (!numbers.every(value) || (m.value === undefined && !m.buckets && !m.quantiles))
        return `metric ${f.name} has a value that is not a number`;
      for (const k of [...Object.keys(m.buckets ?? {}), ...Object.keys(m.quantiles ?? {})])
        if (!VALUE.test(k)) return `metric ${f.name} has a bucket or quantile ${JSON.stringify(k)}`;
    }
  }
  return families;
}

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/**
 * The machines' own Prometheus metrics (fly.toml [[metrics]]): every started machine whose config
 * names a metrics port is scraped at its host-local address (the address the platform's services
 * reach machines on; never through an org's private network) every interval, and the series it
 * served are exposed again, each with the machine's app, instance (machine id), region and process
 * group as labels (a label of the same name the app set is kept as exported_<name>, as Prometheus
 * does), plus hangar_app_scrape_up and hangar_app_scrape_duration_seconds per machine. Served by the
 * monitor at /metrics/apps: apart from the platform's own /metrics, so an app's series never
 * collide with the monitor's.
 */
export class AppMetrics {
  private readonly scraped = new Map<string, Scraped>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;

  constructor(private readonly opts: AppMetricsOptions) {}

  start(): void {
    const every = this.opts.intervalMs ?? 15_000;
    const tick = () => {
      this.round ??= this.scrapeAll().finally(() => {
        this.round = undefined;
      });
    };
    tick();
    this.timer = setInterval(tick, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.round;
  }

  /** Scrapes every target once (the timer's round; tests call it). */
  async scrapeAll(): Promise<void> {
    const seen = new Set<string>();
    const work: (() => Promise<void>)[] = [];
    for (const entry of this.opts.machines()) {
      const m = entry.state;
      if (m.status !== "started" || !m.privateIp) continue;
      const target = metricsTarget(m.configJson);
      if (!target) continue;
      seen.add(entry.aggregateId);
      const labels = {
        app: m.app,
        instance: m.machineId,
        region: m.region,
        process_group: target.processGroup,
      };
      const host = m.privateIp.includes(":") ? `[${m.privateIp}]` : m.privateIp;
      const url = `${target.https ? "https" : "http"}://${host}:${target.port}${target.path}`;
      work.push(() => this.scrape(entry.aggregateId, labels, url));
    }
    // A bounded number at once: a host of thousands of machines is not asked all at the same moment.
    const lanes = Math.max(1, this.opts.concurrency ?? 32);
    let next = 0;
    const lane = async () => {
      while (next < work.length) await (work[next++] as () => Promise<void>)();
    };
    await Promise.all(Array.from({ length: Math.min(lanes, work.length) }, lane));
    for (const id of this.scraped.keys()) if (!seen.has(id)) this.scraped.delete(id);
  }

  private async scrape(id: string, labels: Scraped["labels"], url: string): Promise<void> {
    const started = performance.now();
    const done = (up: boolean, families: Family[], error: string) => {
      this.scraped.set(id, {
        labels,
        target: url,
        up,
        seconds: (performance.now() - started) / 1000,
        error,
        families,
      });
    };
    try {
      const res = await fetch(url, {
        headers: { accept: "text/plain;version=0.0.4" },
        // Never followed: a machine must not point the monitor at another address.
        redirect: "manual",
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5_000),
      });
      if (res.status < 200 || res.status > 299) {
        await res.body?.cancel();
        done(
          false,
          [],
          res.status >= 300 && res.status < 400
            ? `HTTP ${res.status}: redirects are not followed`
            : `HTTP ${res.status}`,
        );
        return;
      }
      const max = this.opts.maxBytes ?? 4 << 20;
      const text = await readCapped(res, max);
      if (text === undefined) {
        done(false, [], `body is over ${max} bytes`);
        return;
      }
      const checked = checkFamilies(
        parsePrometheusTextFormat(text) as Family[],
        this.opts.maxSamples ?? 10_000,
      );
      if (typeof checked === "string") done(false, [], checked);
      else done(true, checked, "");
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.opts.logger?.debug({ target: url, err: error }, "app metrics scrape failed");
      done(false, [], error);
    }
  }

  /** The targets as scraped last: for the monitor's logs and tests. */
  targets(): { app: string; instance: string; target: string; up: boolean; error: string }[] {
    return [...this.scraped.values()].map((s) => ({
      app: s.labels.app,
      instance: s.labels.instance,
      target: s.target,
      up: s.up,
      error: s.error,
    }));
  }

  /** Every scraped series in the Prometheus text format, each family once. */
  render(): string {
    const byName = new Map<string, { family: Family; from: { s: Scraped; metrics: Sample[] }[] }>();
    for (const s of this.scraped.values()) {
      for (const f of s.families) {
        const known = byName.get(f.name);
        // One TYPE per family: another app's family of the same name and another type is left out.
        if (known && known.family.type !== f.type) continue;
        if (known) known.from.push({ s, metrics: f.metrics });
        else byName.set(f.name, { family: f, from: [{ s, metrics: f.metrics }] });
      }
    }
    const out: string[] = [];
    const up: string[] = [];
    const took: string[] = [];
    for (const s of this.scraped.values()) {
      const l = labelText(s.labels, {});
      up.push(`hangar_app_scrape_up${l} ${s.up ? 1 : 0}`);
      took.push(`hangar_app_scrape_duration_seconds${l} ${s.seconds}`);
    }
    out.push(
      "# HELP hangar_app_scrape_up Whether the machine's metrics ([[metrics]]) answered the monitor's last scrape",
      "# TYPE hangar_app_scrape_up gauge",
      ...up,
      "# HELP hangar_app_scrape_duration_seconds How long the monitor's last scrape of the machine's metrics took",
      "# TYPE hangar_app_scrape_duration_seconds gauge",
      ...took,
    );
    for (const [name, { family, from }] of byName) {
      const type = family.type.toLowerCase();
      if (family.help) out.push(`# HELP ${name} ${escapeHelp(family.help)}`);
      out.push(`# TYPE ${name} ${type}`);
      for (const { s, metrics } of from) {
        for (const m of metrics) {
          const own = m.labels ?? {};
          if (m.buckets) {
            for (const [le, v] of Object.entries(m.buckets))
              out.push(`${name}_bucket${labelText(s.labels, { ...own, le })} ${v}`);
          }
          if (m.quantiles) {
            for (const [q, v] of Object.entries(m.quantiles))
              out.push(`${name}${labelText(s.labels, { ...own, quantile: q })} ${v}`);
          }
          if (m.buckets || m.quantiles) {
            if (m.sum !== undefined) out.push(`${name}_sum${labelText(s.labels, own)} ${m.sum}`);
            if (m.count !== undefined) out.push(`${name}_count${labelText(s.labels, own)} ${m.count}`);
          } else if (m.value !== undefined) out.push(`${name}${labelText(s.labels, own)} ${m.value}`);
        }
      }
    }
    return `${out.join("\n")}\n`;
  }
}

/** `{...}` of the target's labels and the series' own (an own label named like a target's is kept as exported_<name>). */
function labelText(target: Scraped["labels"], own: Record<string, string>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(own)) {
    const name = (TARGET_LABELS as readonly string[]).includes(k) ? `exported_${k}` : k;
    parts.push(`${name}="${escapeLabel(v)}"`);
  }
  for (const k of TARGET_LABELS) parts.push(`${k}="${escapeLabel(target[k])}"`);
  return `{${parts.join(",")}}`;
}

import { Agent, request } from "node:http";

export interface MeasureOptions {
  /** Where to send GETs, e.g. `http://127.0.0.1:8080/`. */
  url: string;
  /** Host header to send instead of the URL's (to reach an app through the proxy). */
  host?: string;
  /** Headers sent with every request (e.g. authorization). */
  headers?: Record<string, string>;
  /** Measured requests. */
  requests: number;
  /** Requests kept in flight at once, each on its own keep-alive connection. */
  concurrency: number;
  /** Unmeasured requests sent first, to open connections and warm the JIT. Default min(requests/10, 1000). */
  warmup?: number;
}

export interface Measurement {
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

/** Sends GETs at a fixed concurrency over keep-alive connections; reports throughput and latency percentiles. */
export async function measure(opts: MeasureOptions): Promise<Measurement> {
  const url = new URL(opts.url);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const target = {
    host: url.hostname,
    port: url.port,
    path: `${url.pathname}${url.search}`,
    agent,
    headers: { ...(opts.host === undefined ? {} : { host: opts.host }), ...opts.headers },
  };
  const get = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(target, (res) => {
        if (res.statusCode !== 200) reject(new Error(`${opts.url} answered ${res.statusCode}`));
        res.on("end", resolve).on("error", reject).resume();
      });
      req.on("error", reject).end();
    });
  const run = async (n: number, samples?: Float64Array) => {
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        const t0 = performance.now();
        await get();
        if (samples) samples[i] = performance.now() - t0;
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  };
  try {
    await run(opts.warmup ?? Math.min(Math.ceil(opts.requests / 10), 1000));
    const samples = new Float64Array(opts.requests);
    const t0 = performance.now();
    await run(opts.requests, samples);
    const seconds = (performance.now() - t0) / 1000;
    samples.sort();
    return { rps: opts.requests / seconds, p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99) };
  } finally {
    agent.destroy();
  }
}

// Nearest rank on sorted samples.
function percentile(sorted: Float64Array, p: number): number {
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

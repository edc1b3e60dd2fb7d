import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { parseDuration } from "./duration.js";
import { InvalidCheckError } from "./errors.js";

/** One of a machine's checks, with Fly's fields (MachineCheck). */
export interface CheckDefinition {
  /** "http" or "tcp". */
  type?: string;
  /** Defaults to the machine's port; otherwise mapped through `portMap`. */
  port?: number;
  /** For http: "/" by default. */
  path?: string;
  /** For http: GET by default. */
  method?: string;
  /** For http: "http" (default) or "https". */
  protocol?: string;
  /** Go durations: interval 15s, timeout 5s, grace_period 0s by default. */
  interval?: string;
  timeout?: string;
  grace_period?: string;
  headers?: Array<{ name?: string; values?: string[] }>;
  tls_skip_verify?: boolean;
  tls_server_name?: string;
}

export type CheckStatus = "passing" | "critical";
export type CheckChangeListener = (name: string, status: CheckStatus, output: string) => void;

/** Where the machine answers: its private ip and allocated port. */
export interface CheckTarget {
  ip: string;
  port: number;
}

/** Maps a check's port (the app's internal_port) to the port the machine really listens on. */
export type CheckPortMap = (port: number) => number;

export interface ChecksHandle {
  /** Stops every check; in-flight probes are aborted and report nothing. */
  stop(): void;
}

interface Result {
  status: CheckStatus;
  output: string;
}

interface Plan {
  name: string;
  port: number;
  intervalMs: number;
  timeoutMs: number;
  graceMs: number;
  probe: (ip: string, port: number, signal: AbortSignal) => Promise<Result>;
}

const DEFAULTS = { interval: "15s", timeout: "5s", grace_period: "0s" };

/**
 * How soon a check that has never passed is tried again: every 100 ms through its first interval (from
 * its first round), then after 200 ms, 400 ms ... up to the interval.
 */
export const STARTUP_RETRY_MS = 100;

/**
 * Runs a machine's checks against `target` until stopped, calling `onChange` with each check's first
 * result and then only when its status changes. Rounds come every interval after the grace period;
 * before a check's first pass, a failed one is tried again every 100 ms through its first interval,
 * then after 200 ms, 400 ms ... up to the interval. An http check passes on 2xx and 3xx (redirects are not
 * followed), a tcp check when it connects. Throws InvalidCheckError / InvalidDurationError up front.
 * `onChange` must not throw.
 */
export function runChecks(
  checks: Record<string, CheckDefinition>,
  target: CheckTarget,
  onChange: CheckChangeListener,
  portMap?: CheckPortMap,
): ChecksHandle {
  const plans = Object.entries(checks).map(([name, check]) => plan(name, check, target, portMap));
  const stopper = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  const schedule = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timer.unref();
    timers.add(timer);
  };

  for (const p of plans) {
    let last: CheckStatus | undefined;
    // Until its first pass, a check that fails is tried again sooner (STARTUP_RETRY_MS through the
    // first interval, then doubling up to it): a machine whose program is not listening yet at the
    // first round is healthy within 100 ms of being ready, not a whole interval later, nor (as when the
    // waits doubled from the start) as late again as it took to get ready: a deploy waits for that on
    // every new machine. A probe of a port nothing listens on yet costs a refused connection.
    let passed = false;
    let retryMs = STARTUP_RETRY_MS;
    let firstRoundAt: number | undefined;
    const round = async () => {
      firstRoundAt ??= Date.now();
      const signal = AbortSignal.any([stopper.signal, AbortSignal.timeout(p.timeoutMs)]);
      const result = await p.probe(target.ip, p.port, signal);
      if (stopper.signal.aborted) return;
      if (result.status !== last) {
        last = result.status;
        onChange(p.name, result.status, result.output);
      }
      if (result.status === "passing") passed = true;
      if (!passed && Date.now() - firstRoundAt >= p.intervalMs) retryMs *= 2;
      schedule(passed ? p.intervalMs : Math.min(retryMs, p.intervalMs), run);
    };
    // A round never rejects (a probe resolves its failures); should one, the check is stopped and
    // said to be critical rather than the agent ended.
    const run = () =>
      void round().catch((err: unknown) => {
        if (!stopper.signal.aborted) onChange(p.name, "critical", `the check failed: ${String(err)}`);
      });
    schedule(p.graceMs, run);
  }

  return {
    stop() {
      stopper.abort();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}

function plan(
  name: string,
  check: CheckDefinition,
  target: CheckTarget,
  portMap: CheckPortMap | undefined,
): Plan {
  const intervalMs = parseDuration(check.interval ?? DEFAULTS.interval);
  const timeoutMs = parseDuration(check.timeout ?? DEFAULTS.timeout);
  const graceMs = parseDuration(check.grace_period ?? DEFAULTS.grace_period);
  if (intervalMs <= 0) throw new InvalidCheckError(name, `interval ${check.interval} must be positive`);
  if (timeoutMs <= 0) throw new InvalidCheckError(name, `timeout ${check.timeout} must be positive`);
  if (graceMs < 0) throw new InvalidCheckError(name, `grace_period ${check.grace_period} is negative`);
  const port = check.port === undefined ? target.port : (portMap?.(check.port) ?? check.port);
  const base = { name, port, intervalMs, timeoutMs, graceMs };
  switch (check.type) {
    case "tcp":
      return { ...base, probe: (ip, p, signal) => probeTcp(ip, p, signal, timeoutMs) };
    case "http":
      return { ...base, probe: httpProbe(name, check, timeoutMs) };
    default:
      throw new InvalidCheckError(name, `type ${JSON.stringify(check.type)} is not http or tcp`);
  }
}

function probeTcp(ip: string, port: number, signal: AbortSignal, timeoutMs: number): Promise<Result> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port });
    const done = (result: Result) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      resolve(result);
    };
    const onAbort = () => done({ status: "critical", output: `timed out after ${timeoutMs}ms` });
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => done({ status: "passing", output: `connected to ${ip}:${port}` }));
    socket.once("error", (err) => done({ status: "critical", output: err.message }));
  });
}

function httpProbe(name: string, check: CheckDefinition, timeoutMs: number): Plan["probe"] {
  const protocol = check.protocol ?? "http";
  if (protocol !== "http" && protocol !== "https") {
    throw new InvalidCheckError(name, `protocol ${JSON.stringify(protocol)} is not http or https`);
  }
  const headers: Record<string, string[]> = {};
  for (const header of check.headers ?? []) {
    if (header.name) headers[header.name] = header.values ?? [];
  }
  const request = protocol === "https" ? httpsRequest : httpRequest;
  return (ip, port, signal) =>
    new Promise((resolve) => {
      const options: RequestOptions & { rejectUnauthorized?: boolean; servername?: string } = {
        host: ip,
        port,
        method: check.method?.toUpperCase() || "GET",
        path: check.path || "/",
        headers,
        signal,
        // A fresh connection per probe: a pooled one could hide a server that stopped accepting.
        agent: false,
        rejectUnauthorized: !check.tls_skip_verify,
        ...(check.tls_server_name ? { servername: check.tls_server_name } : {}),
      };
      let req: ReturnType<typeof request>;
      try {
        req = request(options, (res) => {
          const code = res.statusCode ?? 0;
          res.destroy();
          resolve({
            status: code >= 200 && code < 400 ? "passing" : "critical",
            output: `HTTP ${code} ${res.statusMessage ?? ""}`.trimEnd(),
          });
        });
      } catch (err) {
        // Node refuses a path, method or header it cannot send (a space in the path, say), at once:
        // the app's config is wrong, and the check says so rather than ending the agent.
        resolve({ status: "critical", output: `the check cannot be sent: ${(err as Error).message}` });
        return;
      }
      req.once("error", (err) =>
        resolve({
          status: "critical",
          output: signal.aborted ? `timed out after ${timeoutMs}ms` : err.message,
        }),
      );
      req.end();
    });
}

import {
  type ClientRequest,
  type IncomingMessage,
  request,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import {
  type Context,
  context,
  extractTraceContext,
  injectTraceContext,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  tracer,
} from "@hangar/telemetry";
import type { AppState, BackendState } from "./backends.js";
import { isRouted, type ProxyEngine } from "./engine.js";
import { downstreamResponse, type Forwarding, upstreamRequest, viaFor } from "./headers.js";
import type { Held } from "./held.js";
import type { AppMetrics, RetryReason } from "./metrics.js";
import type { QueueEntry } from "./queue.js";
import { type Refusal, refuse } from "./refusal.js";

/** Serves one HTTP request: routes it by Host, forwards it to a machine, relays the answer. */
export function handleRequest(engine: ProxyEngine, req: IncomingMessage, res: ServerResponse): void {
  const fwd = engine.forwarding(req);
  const upstream = upstreamRequest(req.rawHeaders, fwd, false);
  const target = engine.route(upstream.host);
  if (!isRouted(target)) {
    refuse(res, target, fwd);
    const m = engine.appMetrics(target.app);
    if (m) engine.metrics?.request(m, target.status);
    return;
  }
  // A trace per proxied request, child of the client's traceparent if it sent one.
  const span = tracer().startSpan(
    `proxy ${req.method}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        "hangar.app": target.app,
        "http.request.method": req.method ?? "",
        "fly.request_id": fwd.requestId,
      },
    },
    extractTraceContext({ get: (k) => String(req.headers[k] ?? ""), set: () => undefined }),
  );
  const ex = new Exchange(engine, req, res, target, fwd, upstream.headers, upstream.hasBody, span);
  res.on("close", () => ex.closed());
  ex.start();
}

/** How long a request without a body waits, in all, for machines that refuse connections. */
const LISTEN_WAIT_MS = 2_000;

/**
 * One client request and its (at most two) attempts on machines, plus waits for a machine to listen
 * and for a machine to take it (hard limit, wake-up).
 */
class Exchange implements Held {
  attempts = 0;
  clientGone = false;
  private listenRetries = 0;
  private listenWaitedMs = 0;
  current: Attempt | undefined = undefined;
  /** Its place in the app's queue while held. */
  private queued: QueueEntry<Held> | undefined = undefined;
  readonly metrics: AppMetrics | undefined;
  private readonly arrivedAt = performance.now();
  // Only requests without a body can be sent again, and only idempotent ones.
  private readonly retryable: boolean;
  /** The request span's context: attempts and a wake-up it causes are its children. */
  readonly traceContext: Context;

  constructor(
    readonly engine: ProxyEngine,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly app: AppState,
    readonly fwd: Forwarding,
    readonly headers: string[],
    readonly hasBody: boolean,
    readonly span: Span,
  ) {
    this.traceContext = trace.setSpan(context.active(), span);
    this.retryable = !hasBody && (req.method === "GET" || req.method === "HEAD");
    this.metrics = engine.appMetrics(app.app);
    app.inFlight++;
    app.received++;
  }

  /** Sends the request to a machine that can take it, or holds it until one can, or refuses it. */
  start(): void {
    this.attempts = 1;
    this.admit();
  }

  /** Asks the engine for a machine (or a place in the queue), in the request's trace: a wake-up joins it. */
  private admit(): void {
    this.queued = context.with(this.traceContext, () => this.engine.admit(this.app, this));
  }

  /** Starts an attempt on `backend` (Held). */
  go(backend: BackendState): void {
    this.queued = undefined;
    this.current = new Attempt(this, backend);
  }

  /** Answers with the proxy's own refusal (Held). */
  refuse(r: Refusal): void {
    this.queued = undefined;
    // An unsent body would stall the client connection; drain it.
    if (!this.req.complete) this.req.resume();
    refuse(this.res, r, this.fwd);
  }

  /** Where to send the request again after `failed` failed, if it may be. */
  retryTarget(failed: BackendState): BackendState | undefined {
    if (!this.retryable || this.attempts > 1 || this.clientGone) return undefined;
    return this.engine.pick(this.app, failed);
  }

  /**
   * A machine that has just started may not listen yet: a refused connection sent nothing, so a
   * request without a body waits a little and tries again, for up to LISTEN_WAIT_MS in all.
   */
  waitForListen(): boolean {
    if (!this.retryable || this.clientGone || this.listenWaitedMs >= LISTEN_WAIT_MS) return false;
    const delay = Math.min(25 * 2 ** this.listenRetries, 250, LISTEN_WAIT_MS - this.listenWaitedMs);
    this.listenRetries++;
    this.listenWaitedMs += delay;
    const timer = setTimeout(() => {
      if (this.clientGone) return;
      if (this.metrics) this.engine.metrics?.retry(this.metrics, "connect_refused");
      // The machine may have stopped before this proxy folded it: with no backend left, admit holds
      // the request and wakes a sleeping machine (or refuses with 503 when there is none).
      this.admit();
    }, delay);
    timer.unref();
    return true;
  }

  /** Sends the request again; should `backend` have filled up meanwhile, waits for a slot like any request. */
  retry(backend: BackendState, reason: RetryReason): void {
    if (this.metrics) this.engine.metrics?.retry(this.metrics, reason);
    this.attempts++;
    if (this.app.canTake(backend)) this.go(backend);
    else this.admit();
  }

  /** Answers 502 because no machine could be reached. */
  badGateway(err: Error): void {
    const { app, engine, fwd } = this;
    engine.logger.debug(
      { request_id: fwd.requestId, app: app.app, err: errorCode(err) },
      "no machine reachable for request",
    );
    this.refuse({
      status: 502,
      code: "bad_gateway",
      message: `could not reach a machine of app ${app.app} (${errorCode(err)})`,
      app: app.app,
    });
  }

  /** The client connection closed: after the answer, or before (then the machine's side is cut). */
  closed(): void {
    const { res, engine } = this;
    if (!res.writableFinished) {
      this.clientGone = true;
      this.current?.upstream.destroy();
    }
    if (this.queued) {
      this.app.queue.remove(this.queued);
      this.queued = undefined;
    }
    engine.pool.release(this.app);
    this.span.setAttribute("http.response.status_code", res.headersSent ? res.statusCode : 0);
    if (!res.headersSent || res.statusCode >= 500) this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end();
    if (this.metrics) {
      const seconds = (performance.now() - this.arrivedAt) / 1000;
      engine.metrics?.request(this.metrics, res.headersSent ? res.statusCode : undefined, seconds);
    }
  }
}

const WAITING = 0;
const RELAYING = 1;
const DONE = 2;

/** One try of an exchange on one machine. */
class Attempt {
  readonly upstream: ClientRequest;
  private phase = WAITING;
  private settled = false;
  private readonly started: number;
  private readonly span: Span;

  constructor(
    private readonly ex: Exchange,
    private readonly backend: BackendState,
  ) {
    const { req } = ex;
    this.started = ex.metrics ? performance.now() : 0;
    this.span = tracer().startSpan(
      "upstream",
      {
        kind: SpanKind.CLIENT,
        attributes: { "hangar.machine_id": backend.machineId, "server.address": backend.address },
      },
      ex.traceContext,
    );
    this.upstream = request({
      host: backend.address,
      port: backend.port,
      method: req.method,
      path: req.url,
      headers: withTraceparent(ex.headers, trace.setSpan(ex.traceContext, this.span)),
      agent: backend.agent,
    });
    backend.inFlight++;
    this.upstream.on("response", (upRes) => this.response(upRes));
    this.upstream.on("error", (err) => this.error(err));
    if (ex.hasBody) req.pipe(this.upstream);
    else this.upstream.end();
  }

  private response(upRes: IncomingMessage): void {
    const { ex } = this;
    const { engine, res } = ex;
    if (ex.metrics) engine.metrics?.upstreamResponse(ex.metrics, (performance.now() - this.started) / 1000);
    const status = upRes.statusCode ?? 502;
    const failed = status >= 500;
    this.span.setAttribute("http.response.status_code", status);
    if (failed) {
      const next = ex.retryTarget(this.backend);
      if (next) {
        this.phase = DONE;
        upRes.resume();
        this.settle(true);
        ex.retry(next, "status_5xx");
        return;
      }
    }
    try {
      res.writeHead(
        status,
        upRes.statusMessage || (STATUS_CODES[status] ?? ""),
        downstreamResponse(
          upRes.rawHeaders,
          ex.fwd.requestId,
          viaFor(upRes.httpVersionMajor, upRes.httpVersionMinor),
          engine.region,
          false,
        ),
      );
    } catch (err) {
      // Node refuses a head it cannot write (e.g. a bad status); treat it as an unreachable machine.
      this.phase = DONE;
      this.upstream.destroy();
      this.settle(true);
      ex.badGateway(err as Error);
      return;
    }
    this.phase = RELAYING;
    upRes.on("close", () => {
      if (upRes.complete) {
        this.settle(failed);
        return;
      }
      // The machine went away mid-answer: the client must not take a cut body for a whole one.
      this.settle(!ex.clientGone);
      res.destroy();
    });
    upRes.pipe(res);
  }

  private error(err: Error): void {
    // Once answered, the response's close handler owns the outcome.
    if (this.phase !== WAITING) return;
    this.phase = DONE;
    const { ex } = this;
    if (ex.clientGone) {
      this.settle(false);
      return;
    }
    this.settle(true);
    if (errorCode(err) === "ECONNREFUSED" && ex.waitForListen()) return;
    const next = ex.retryTarget(this.backend);
    if (next) ex.retry(next, "connect_error");
    else ex.badGateway(err);
  }

  private settle(failed: boolean): void {
    if (this.settled) return;
    this.settled = true;
    if (failed) this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end();
    if (failed) this.backend.errors.record(this.ex.engine.now());
    this.backend.release();
  }
}

/** The forwarded headers with the machine's traceparent (the attempt's span) in place of the client's. */
function withTraceparent(headers: readonly string[], ctx: Context): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = (headers[i] as string).toLowerCase();
    if (name !== "traceparent" && name !== "tracestate")
      out.push(headers[i] as string, headers[i + 1] as string);
  }
  injectTraceContext({ get: () => "", set: (k, v) => out.push(k, v) }, ctx);
  return out;
}

function errorCode(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

import {
  type ClientRequest,
  type IncomingMessage,
  request,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import type { Transform } from "node:stream";
import { applyResponseRules } from "@hangar/config";
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
import { compressedHeaders, compressionFor, compressor, type Encoding } from "./compress.js";
import { isRouted, type ProxyEngine } from "./engine.js";
import {
  downstreamResponse,
  type Forwarding,
  type UpstreamRequest,
  upstreamRequest,
  viaFor,
} from "./headers.js";
import type { Held } from "./held.js";
import { closeIdleAfter } from "./idle.js";
import type { AppMetrics, ReplayResult, RetryReason } from "./metrics.js";
import type { QueueEntry } from "./queue.js";
import { type Refusal, refuse } from "./refusal.js";
import {
  findReplay,
  MAX_REPLAYS,
  parseReplay,
  REPLAY_BODY_MAX,
  type ReplayAsk,
  replaySource,
  replayTargets,
} from "./replay.js";

// The hot path allocates what a request needs and no more: one rewritten header list (the attempt's
// traceparent is appended to it in place), and the exchange and attempt objects. Node's events reach
// them through these module-level handlers and a symbol on the emitter, not through closures.
const EXCHANGE = Symbol("exchange");
const ATTEMPT = Symbol("attempt");
/** The compressor a machine's answer goes through (http_options.compress), on that answer. */
const COMPRESSOR = Symbol("compressor");
type ClientSide = ServerResponse & { [EXCHANGE]?: Exchange; [ATTEMPT]?: Attempt };
type ClientBody = IncomingMessage & { [EXCHANGE]?: Exchange };
type UpstreamSide<T> = T & { [ATTEMPT]?: Attempt };
type Compressor = Transform & { [ATTEMPT]?: Attempt };
type UpstreamAnswer = UpstreamSide<IncomingMessage> & { [COMPRESSOR]?: Compressor };

/** Reads the client's trace context from the one pass over its headers (no req.headers object). */
const incoming = {
  from: undefined as UpstreamRequest | undefined,
  get(k: string): string {
    const u = this.from;
    if (u === undefined) return "";
    return (k === "traceparent" ? u.traceparent : k === "tracestate" ? u.tracestate : undefined) ?? "";
  },
  set(): void {},
};

/** Appends the attempt's trace context to its header list. */
const outgoing = {
  to: [] as string[],
  get: (): string => "",
  set(k: string, v: string): void {
    this.to.push(k, v);
  },
};

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
  let parent = context.active();
  if (upstream.traceparent !== undefined) {
    incoming.from = upstream;
    parent = extractTraceContext(incoming, parent);
    incoming.from = undefined;
  }
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
    parent,
  );
  const ex = new Exchange(engine, req, res, target, fwd, upstream, span);
  (res as ClientSide)[EXCHANGE] = ex;
  res.on("close", clientClosed);
  if (target.idleTimeout !== undefined) closeIdleAfter(res, target.idleTimeout);
  ex.start();
}

function clientClosed(this: ClientSide): void {
  this[EXCHANGE]?.closed();
}

/**
 * How long a request without a body waits, in all, for machines that refuse connections: a machine
 * reported started may not listen yet, and machines started together on a busy host (a scale-up)
 * took more than 2 s to.
 */
const LISTEN_WAIT_MS = 10_000;

/**
 * One client request and its attempts on machines (at most two per target: a retry; a machine's
 * fly-replay sends it to another target), plus waits for a machine to listen and for a machine to
 * take it (hard limit, wake-up).
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
  /** How many entries of `headers` are the request's own; each attempt appends its traceparent after them. */
  ownHeaders: number;
  /** How many of them came from the client (a replay appends Fly-Replay-Src after them). */
  private readonly clientHeaders: number;
  readonly headers: string[];
  readonly hasBody: boolean;
  /** The app whose machines it goes to: the Host's, or a replay's target. */
  app: AppState;
  /** The machines it may go to (Held); set by a replay. */
  only: ((b: BackendState) => boolean) | undefined = undefined;
  /** How many times machines had it replayed, and which (`<app> <machine>`): never a target again. */
  private replays = 0;
  private replayedBy: Set<string> | undefined = undefined;
  /**
   * The body as sent to the first machine, kept while no answer came, to replay it. Undefined when
   * there is none, once relayed, or past REPLAY_BODY_MAX (then bodyTooLarge).
   */
  private body: Buffer[] | undefined = undefined;
  private bodyBytes = 0;
  private bodyTooLarge = false;
  /** Whether the body is being (or was) streamed to a machine: later attempts send the kept one. */
  private bodyStarted = false;
  /** A replay asked while the body was still arriving: decided once it has come whole. */
  private awaitingBody: { value: string; from: BackendState } | undefined = undefined;

  constructor(
    readonly engine: ProxyEngine,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    app: AppState,
    readonly fwd: Forwarding,
    upstream: UpstreamRequest,
    readonly span: Span,
  ) {
    this.app = app;
    this.headers = upstream.headers;
    this.hasBody = upstream.hasBody;
    this.traceContext = trace.setSpan(context.active(), span);
    this.ownHeaders = this.headers.length;
    this.clientHeaders = this.ownHeaders;
    this.retryable = !this.hasBody && (req.method === "GET" || req.method === "HEAD");
    // A body the client says is over the most a replay keeps is not kept at all.
    if (
      this.hasBody &&
      upstream.contentLength !== undefined &&
      Number(upstream.contentLength) > REPLAY_BODY_MAX
    )
      this.bodyTooLarge = true;
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
    this.queued = context.with(this.traceContext, this.engine.admit, this.engine, this.app, this);
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
    return this.engine.pick(this.app, failed, this.only);
  }

  /**
   * Sends the body to an attempt's machine: the client's as it comes for the first (keeping it, up
   * to REPLAY_BODY_MAX, while no answer came), the kept one for a replay.
   */
  sendBody(upstream: ClientRequest): void {
    if (this.bodyStarted) {
      for (const chunk of this.body ?? NO_BODY) upstream.write(chunk);
      upstream.end();
      return;
    }
    this.bodyStarted = true;
    this.req.pipe(upstream);
    if (this.bodyTooLarge) return;
    this.body = [];
    (this.req as ClientBody)[EXCHANGE] = this;
    this.req.on("data", keepBodyChunk);
  }

  /** Keeps a chunk of the body for a replay, or stops keeping it past REPLAY_BODY_MAX. */
  keep(chunk: Buffer): void {
    const body = this.body;
    if (body === undefined) return;
    this.bodyBytes += chunk.length;
    if (this.bodyBytes <= REPLAY_BODY_MAX) {
      body.push(chunk);
      return;
    }
    this.dropBody();
    this.bodyTooLarge = true;
    // A replay waiting for the body is refused now, not after the rest of a large upload.
    const waiting = this.awaitingBody;
    if (waiting !== undefined) {
      this.awaitingBody = undefined;
      this.replayNow(waiting.value, waiting.from);
    }
  }

  /** A machine's answer is relayed: the body will not be replayed. */
  dropBody(): void {
    if (this.body === undefined) return;
    this.body = undefined;
    this.req.off("data", keepBodyChunk);
  }

  /**
   * `from` answered with `fly-replay: value`: sends the request to the target it names (another app
   * of its organization, a region, a machine) with the kept body, or refuses it: a header it cannot
   * follow, a loop, a body too large to have been kept, an app outside the organization, no machine.
   */
  replay(value: string, from: BackendState, upstream: ClientRequest): void {
    if (this.hasBody) {
      // The machine has answered: the rest of the body is no longer for it.
      this.req.unpipe(upstream);
      if (!this.req.readableEnded) {
        upstream.destroy();
        if (!this.bodyTooLarge) {
          this.awaitingBody = { value, from };
          this.req.once("end", () => this.bodyEnded());
          this.req.resume();
          return;
        }
      }
    }
    this.replayNow(value, from);
  }

  private replayNow(value: string, from: BackendState): void {
    // A client that left has been counted out (closed): nothing more is sent for it.
    if (this.clientGone) return;
    const source = this.app;
    const by = `machine ${from.machineId} of app ${source.app}`;
    let ask: ReplayAsk;
    try {
      ask = parseReplay(value);
    } catch (err) {
      const message = `${by} answered with a fly-replay header the proxy cannot follow: ${(err as Error).message}`;
      this.replayRefused(source, "invalid", {
        status: 502,
        code: "invalid_replay",
        message,
        app: source.app,
      });
      return;
    }
    this.replays++;
    const replayedBy = this.replayedBy ?? new Set<string>();
    this.replayedBy = replayedBy;
    replayedBy.add(`${source.app} ${from.machineId}`);
    if (this.replays > MAX_REPLAYS) {
      const message = `replay loop: the request was replayed ${MAX_REPLAYS} times (fly-replay) and ${by} asked for one more`;
      this.replayRefused(source, "loop", { status: 508, code: "replay_loop", message, app: source.app });
      return;
    }
    if (this.bodyTooLarge) {
      const message = `${by} asked to replay the request (fly-replay), but its body is larger than the ${REPLAY_BODY_MAX} bytes the proxy keeps to replay a request`;
      this.replayRefused(source, "body_too_large", {
        status: 413,
        code: "replay_body_too_large",
        message,
        app: source.app,
      });
      return;
    }
    let target = source;
    if (ask.app !== undefined && ask.app !== source.app) {
      const other = this.engine.pool.resolve(ask.app);
      // The same answer whether the app does not exist or is another organization's: a machine
      // cannot learn other tenants' app names by replaying to them.
      if (other === undefined || source.org === undefined || other.org !== source.org) {
        const message = `${by} asked to replay the request to app ${ask.app} (fly-replay), which is not an app of its organization`;
        this.replayRefused(source, "app_not_found", {
          status: 502,
          code: "replay_app_not_found",
          message,
          app: source.app,
        });
        return;
      }
      target = other;
    }
    const only = replayTargets(target, ask, replayedBy, by);
    if (typeof only !== "function" && only !== undefined) {
      this.replayRefused(source, only.code === "replay_loop" ? "loop" : "no_machine", only);
      return;
    }
    this.engine.metrics?.replay(source.app, "replayed");
    this.span.addEvent("fly-replay", {
      "hangar.machine_id": from.machineId,
      "hangar.replay.app": target.app,
      "hangar.replay.header": value,
    });
    if (target !== source) {
      this.engine.pool.release(source);
      target.inFlight++;
      target.received++;
      this.app = target;
    }
    this.only = only;
    this.attempts = 1;
    const headers = this.headers;
    headers.length = this.clientHeaders;
    headers.push(
      "Fly-Replay-Src",
      replaySource(from.machineId, from.region ?? this.engine.region, ask.state, Date.now()),
    );
    this.ownHeaders = headers.length;
    this.admit();
  }

  /** The body the replay waits for has come whole. */
  private bodyEnded(): void {
    const waiting = this.awaitingBody;
    if (waiting === undefined) return;
    this.awaitingBody = undefined;
    this.replayNow(waiting.value, waiting.from);
  }

  private replayRefused(source: AppState, result: ReplayResult, r: Refusal): void {
    this.engine.metrics?.replay(source.app, result);
    this.engine.logger.debug({ request_id: this.fwd.requestId, app: source.app, code: r.code }, r.message);
    this.dropBody();
    this.refuse(r);
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
      this.current?.cut();
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
  readonly upstream: UpstreamSide<ClientRequest>;
  /** The machine's answer being relayed. */
  upRes: UpstreamAnswer | undefined = undefined;
  private phase = WAITING;
  private settled = false;
  private readonly started: number;
  private readonly span: Span;

  constructor(
    readonly ex: Exchange,
    private readonly backend: BackendState,
  ) {
    const { req, headers } = ex;
    this.started = ex.metrics ? performance.now() : 0;
    this.span = tracer().startSpan(
      "upstream",
      {
        kind: SpanKind.CLIENT,
        attributes: { "hangar.machine_id": backend.machineId, "server.address": backend.address },
      },
      ex.traceContext,
    );
    // The machine gets this attempt's span as its parent, in place of the client's (or a former attempt's).
    headers.length = ex.ownHeaders;
    outgoing.to = headers;
    injectTraceContext(outgoing, trace.setSpan(ex.traceContext, this.span));
    outgoing.to = NO_HEADERS;
    this.upstream = request({
      host: backend.address,
      port: backend.port,
      method: req.method,
      path: req.url,
      headers,
      agent: backend.agent,
    });
    backend.inFlight++;
    this.upstream[ATTEMPT] = this;
    this.upstream.on("response", upstreamResponse);
    this.upstream.on("error", upstreamError);
    if (ex.hasBody) ex.sendBody(this.upstream);
    else this.upstream.end();
  }

  response(upRes: IncomingMessage): void {
    const { ex } = this;
    const { engine, res } = ex;
    if (ex.metrics) engine.metrics?.upstreamResponse(ex.metrics, (performance.now() - this.started) / 1000);
    const replay = findReplay(upRes.rawHeaders);
    if (replay !== undefined) {
      // The answer is not for the client: its body is drained so the connection can serve again.
      this.phase = DONE;
      upRes.resume();
      this.settle(false);
      ex.replay(replay, this.backend, this.upstream);
      return;
    }
    if (ex.hasBody) ex.dropBody();
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
    let encoding: Encoding | undefined;
    try {
      const { app } = ex;
      const rules = app.response;
      const headers = downstreamResponse(
        upRes.rawHeaders,
        ex.fwd.requestId,
        viaFor(upRes.httpVersionMajor, upRes.httpVersionMinor),
        engine.region,
        false,
        rules?.pristine,
      );
      if (rules) applyResponseRules(headers, rules);
      if (app.compress) {
        encoding = compressionFor(ex.req.method, ex.req.rawHeaders, status, headers);
        if (encoding !== undefined) compressedHeaders(headers, encoding);
      }
      res.writeHead(status, upRes.statusMessage || (STATUS_CODES[status] ?? ""), headers);
    } catch (err) {
      // Node refuses a head it cannot write (e.g. a bad status); treat it as an unreachable machine.
      this.phase = DONE;
      this.upstream.destroy();
      this.settle(true);
      ex.badGateway(err as Error);
      return;
    }
    this.phase = RELAYING;
    this.failed = failed;
    // The body is relayed as pipe() would, with backpressure: a client that does not read pauses the machine.
    const up = upRes as UpstreamAnswer;
    this.upRes = up;
    up[ATTEMPT] = this;
    (res as ClientSide)[ATTEMPT] = this;
    up.on("close", upstreamClosed);
    if (encoding !== undefined) {
      this.relayCompressed(up, encoding);
      return;
    }
    up.on("data", upstreamData);
    up.on("end", upstreamEnded);
    res.on("drain", clientDrained);
  }

  private failed = false;

  /**
   * Relays the body through a compressor, with backpressure both ways: a compressor that is full
   * pauses the machine, a client that does not read pauses the compressor. It flushes after each
   * chunk of the machine's, so a streamed answer is not held back.
   */
  private relayCompressed(up: UpstreamAnswer, encoding: Encoding): void {
    const zip: Compressor = compressor(encoding);
    up[COMPRESSOR] = zip;
    zip[ATTEMPT] = this;
    up.on("data", upstreamDataCompressed);
    up.on("end", upstreamEndedCompressed);
    zip.on("data", compressedData);
    zip.on("drain", compressorDrained);
    zip.on("end", compressedEnded);
    zip.on("error", compressorFailed);
    this.ex.res.on("drain", clientDrainedCompressed);
  }

  /** The client left before the whole answer: the machine's side is cut, and the compressor freed. */
  cut(): void {
    this.upstream.destroy();
    this.upRes?.[COMPRESSOR]?.destroy();
  }

  /** The machine's answer ended: whole, or cut when the machine went away mid-answer. */
  upstreamClosed(upRes: IncomingMessage): void {
    if (upRes.complete) {
      this.settle(this.failed);
      return;
    }
    // The client must not take a cut body for a whole one.
    this.settle(!this.ex.clientGone);
    (upRes as UpstreamAnswer)[COMPRESSOR]?.destroy();
    this.ex.res.destroy();
  }

  /** The client (or the compressor) can take more of the body. */
  drained(): void {
    this.upRes?.resume();
  }

  error(err: Error): void {
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

const NO_HEADERS: string[] = [];
const NO_BODY: Buffer[] = [];

function keepBodyChunk(this: ClientBody, chunk: Buffer): void {
  this[EXCHANGE]?.keep(chunk);
}

function upstreamResponse(this: UpstreamSide<ClientRequest>, upRes: IncomingMessage): void {
  this[ATTEMPT]?.response(upRes);
}

function upstreamError(this: UpstreamSide<ClientRequest>, err: Error): void {
  this[ATTEMPT]?.error(err);
}

function upstreamData(this: UpstreamSide<IncomingMessage>, chunk: Buffer): void {
  const attempt = this[ATTEMPT];
  if (attempt !== undefined && !attempt.ex.res.write(chunk)) this.pause();
}

function upstreamEnded(this: UpstreamSide<IncomingMessage>): void {
  this[ATTEMPT]?.ex.res.end();
}

function upstreamClosed(this: UpstreamSide<IncomingMessage>): void {
  this[ATTEMPT]?.upstreamClosed(this);
}

function clientDrained(this: ClientSide): void {
  this[ATTEMPT]?.drained();
}

function upstreamDataCompressed(this: UpstreamAnswer, chunk: Buffer): void {
  const zip = this[COMPRESSOR];
  if (zip !== undefined && !zip.write(chunk)) this.pause();
}

function upstreamEndedCompressed(this: UpstreamAnswer): void {
  this[COMPRESSOR]?.end();
}

function compressedData(this: Compressor, chunk: Buffer): void {
  const attempt = this[ATTEMPT];
  if (attempt !== undefined && !attempt.ex.res.write(chunk)) this.pause();
}

function compressorDrained(this: Compressor): void {
  this[ATTEMPT]?.drained();
}

function compressedEnded(this: Compressor): void {
  this[ATTEMPT]?.ex.res.end();
}

// Not expected (any bytes compress). The client must not take what came for the whole body; its
// connection closing cuts the machine's side (Exchange.closed), which is not counted against it.
function compressorFailed(this: Compressor): void {
  this[ATTEMPT]?.ex.res.destroy();
}

function clientDrainedCompressed(this: ClientSide): void {
  this[ATTEMPT]?.upRes?.[COMPRESSOR]?.resume();
}

function errorCode(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

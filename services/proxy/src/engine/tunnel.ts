import { type ClientRequest, type IncomingMessage, request, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { AppState, BackendState } from "./backends.js";
import { isRouted, type ProxyEngine } from "./engine.js";
import { downstreamResponse, type Forwarding, upstreamRequest, viaFor } from "./headers.js";
import type { Held } from "./held.js";
import { closeIdleTunnel } from "./idle.js";
import type { AppMetrics } from "./metrics.js";
import type { QueueEntry } from "./queue.js";
import { type Refusal, refuseOnSocket } from "./refusal.js";
import { headerLines, statusLine } from "./wire.js";

/**
 * Serves an Upgrade request (e.g. WebSocket): forwards it to a machine and, once the machine
 * switches protocols, pipes the two raw sockets into each other. Not retried; held like any request
 * while no machine can take it.
 */
export function handleUpgrade(engine: ProxyEngine, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const fwd = engine.forwarding(req);
  const upstream = upstreamRequest(req.rawHeaders, fwd, true);
  const target = engine.route(upstream.host);
  const m = engine.appMetrics(target.app);
  socket.on("error", () => socket.destroy());
  if (!isRouted(target)) {
    refuseOnSocket(socket, target, fwd);
    if (m) engine.metrics?.request(m, target.status);
    return;
  }
  const tunnel = new Tunnel(engine, req, socket, head, target, fwd, upstream.headers, m);
  tunnel.start();
}

/** One upgrade request: held until a machine can take it, then the tunnel to that machine. */
class Tunnel implements Held {
  private backend: BackendState | undefined = undefined;
  private up: ClientRequest | undefined = undefined;
  private queued: QueueEntry<Held> | undefined = undefined;
  private answered = false;
  private failed = false;
  private ended = false;

  constructor(
    private readonly engine: ProxyEngine,
    private readonly req: IncomingMessage,
    private readonly socket: Duplex,
    private readonly head: Buffer,
    private readonly app: AppState,
    private readonly fwd: Forwarding,
    private readonly headers: string[],
    private readonly metrics: AppMetrics | undefined,
  ) {
    app.inFlight++;
    app.received++;
    engine.tunnels.add(socket);
    socket.on("close", () => {
      this.up?.destroy();
      if (this.queued) {
        app.queue.remove(this.queued);
        this.queued = undefined;
      }
      this.end();
    });
  }

  start(): void {
    this.queued = this.engine.admit(this.app, this);
  }

  refuse(r: Refusal): void {
    this.queued = undefined;
    if (this.metrics) this.engine.metrics?.request(this.metrics, r.status);
    refuseOnSocket(this.socket, r, this.fwd);
  }

  go(backend: BackendState): void {
    this.queued = undefined;
    const { engine, socket, fwd, metrics: m, app, head } = this;
    this.backend = backend;
    backend.inFlight++;
    const up = request({
      host: backend.address,
      port: backend.port,
      method: this.req.method,
      path: this.req.url,
      headers: this.headers,
      agent: backend.agent,
    });
    this.up = up;

    up.on("upgrade", (upRes, upSocket, upHead) => {
      this.answered = true;
      if (m) engine.metrics?.request(m, upRes.statusCode);
      const headers = downstreamResponse(
        upRes.rawHeaders,
        fwd.requestId,
        viaFor(upRes.httpVersionMajor, upRes.httpVersionMinor),
        engine.region,
        true,
      );
      socket.write(
        `${statusLine(101, upRes.statusMessage || "Switching Protocols")}${headerLines(headers)}\r\n`,
      );
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      // The pool's idle timeout no longer applies: a quiet WebSocket is still a live one, unless
      // the app gives one of its own (http_options.idle_timeout), kept on the client's side.
      upSocket.setTimeout(0);
      if (app.idleTimeout !== undefined) closeIdleTunnel(socket, app.idleTimeout);
      upSocket.on("error", () => upSocket.destroy());
      upSocket.on("close", () => socket.destroy());
      socket.on("close", () => upSocket.destroy());
      upSocket.pipe(socket);
      socket.pipe(upSocket);
    });

    // The machine declined to switch: relay its answer and close, as the connection is no longer HTTP.
    up.on("response", (upRes) => {
      this.answered = true;
      const status = upRes.statusCode ?? 502;
      this.failed = status >= 500;
      if (m) engine.metrics?.request(m, status);
      const headers = downstreamResponse(
        upRes.rawHeaders,
        fwd.requestId,
        viaFor(upRes.httpVersionMajor, upRes.httpVersionMinor),
        engine.region,
        false,
      );
      headers.push("Connection", "close");
      socket.write(
        `${statusLine(status, upRes.statusMessage || (STATUS_CODES[status] ?? ""))}${headerLines(headers)}\r\n`,
      );
      upRes.pipe(socket);
    });

    up.on("error", (err: NodeJS.ErrnoException) => {
      if (this.answered || socket.destroyed) return;
      this.failed = true;
      if (m) engine.metrics?.request(m, 502);
      refuseOnSocket(
        socket,
        {
          status: 502,
          code: "bad_gateway",
          message: `could not reach a machine of app ${app.app} (${err.code ?? err.message})`,
          app: app.app,
        },
        fwd,
      );
    });
    up.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    const { engine, backend } = this;
    engine.tunnels.delete(this.socket);
    if (backend) {
      if (this.failed) backend.errors.record(engine.now());
      backend.release();
    }
    engine.pool.release(this.app);
  }
}

import { type IncomingMessage, request, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { BackendState } from "./backends.js";
import { pickBackend } from "./balancer.js";
import { isRouted, type ProxyEngine } from "./engine.js";
import { downstreamResponse, upstreamRequest, viaFor } from "./headers.js";
import { refuseOnSocket } from "./refusal.js";
import { headerLines, statusLine } from "./wire.js";

/**
 * Serves an Upgrade request (e.g. WebSocket): forwards it to a machine and, once the machine
 * switches protocols, pipes the two raw sockets into each other. Not retried.
 */
export function handleUpgrade(engine: ProxyEngine, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const fwd = engine.forwarding(req);
  const upstream = upstreamRequest(req.rawHeaders, fwd, true);
  const target = engine.route(upstream.host);
  const m = engine.appMetrics(target.app);
  if (!isRouted(target)) {
    socket.on("error", () => socket.destroy());
    refuseOnSocket(socket, target, fwd);
    if (m) engine.metrics?.request(m, target.status);
    return;
  }
  const app = target;
  const backend = pickBackend(app.backends, engine.now(), engine.random) as BackendState;
  let answered = false;
  let failed = false;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    engine.tunnels.delete(socket);
    if (failed) backend.errors.record(engine.now());
    backend.release();
    engine.pool.release(app);
  };
  const up = request({
    host: backend.address,
    port: backend.port,
    method: req.method,
    path: req.url,
    headers: upstream.headers,
    agent: backend.agent,
  });
  app.inFlight++;
  backend.inFlight++;
  engine.tunnels.add(socket);
  socket.on("error", () => socket.destroy());
  socket.on("close", () => {
    up.destroy();
    end();
  });

  up.on("upgrade", (upRes, upSocket, upHead) => {
    answered = true;
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
    // The pool's idle timeout no longer applies: a quiet WebSocket is still a live one.
    upSocket.setTimeout(0);
    upSocket.on("error", () => upSocket.destroy());
    upSocket.on("close", () => socket.destroy());
    socket.on("close", () => upSocket.destroy());
    upSocket.pipe(socket);
    socket.pipe(upSocket);
  });

  // The machine declined to switch: relay its answer and close, as the connection is no longer HTTP.
  up.on("response", (upRes) => {
    answered = true;
    const status = upRes.statusCode ?? 502;
    failed = status >= 500;
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
    if (answered || socket.destroyed) return;
    failed = true;
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

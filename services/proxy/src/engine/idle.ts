import type { ServerResponse } from "node:http";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";

// fly.toml's http_options.idle_timeout: how long a client connection to the app may stay idle before
// the proxy closes it. It governs the client's leg only (the proxy's pools to machines keep their
// own). An HTTP connection is idle between requests: one with a request in flight never is, however
// long the machine takes to answer. An upgraded connection (a WebSocket) is idle while no byte moves
// either way.

const IDLE_MS = Symbol("idleMs");
type Idling = ServerResponse & { [IDLE_MS]?: number };

/** The longest timeout node keeps (a signed 32-bit number of ms, about 24.8 days); it warns past it. */
const TIMEOUT_MAX_MS = 2 ** 31 - 1;

/** An idle_timeout (seconds, up to a uint32) as a socket timeout in ms, at most node's longest. */
export function idleMs(seconds: number): number {
  return Math.min(seconds * 1000, TIMEOUT_MAX_MS);
}

/**
 * Closes the client connection `res` is answered on after `seconds` without a next request, once
 * `res` is finished and the connection kept alive (in place of node's keep-alive timeout), and tells
 * the client so (`Keep-Alive: timeout=<seconds>`).
 */
export function closeIdleAfter(res: ServerResponse, seconds: number): void {
  const r = res as Idling;
  if (r[IDLE_MS] !== undefined) return;
  const ms = idleMs(seconds);
  r[IDLE_MS] = ms;
  // Node writes its Keep-Alive header from this field, the server's keepAliveTimeout by default.
  (res as unknown as { _keepAliveTimeout: number })._keepAliveTimeout = ms;
  res.on("finish", responseFinished);
}

// Runs after node's own finish handler: when it keeps the connection for another request it has
// armed the socket's timeout with its keep-alive timeout, which this replaces (node disarms it when
// the next request comes). A connection closing, or passed to a pipelined response, has none.
function responseFinished(this: Idling): void {
  const ms = this[IDLE_MS];
  const socket = this.req.socket;
  if (ms === undefined || socket.destroyed || !socket.timeout) return;
  socket.setTimeout(ms);
}

/** Closes an upgraded client connection after `seconds` without a byte either way. */
export function closeIdleTunnel(socket: Duplex, seconds: number): void {
  // Node hands an upgrade its socket, whose timeout counts reads and writes alike.
  if (!(socket instanceof Socket)) return;
  socket.setTimeout(idleMs(seconds));
  socket.on("timeout", idleTunnel);
}

function idleTunnel(this: Socket): void {
  this.destroy();
}

import { type ServerResponse, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { headerLines, statusLine } from "./wire.js";

/** An answer the proxy gives itself, without a machine's response. */
export interface Refusal {
  status: number;
  /** Machine-readable reason, e.g. `not_found`. */
  code: string;
  message: string;
  /** The `app` metrics label: the app's name, or UNROUTED_APP. */
  app: string;
  /** Seconds the client should wait before trying again. */
  retryAfter?: number;
}

/** What the proxy adds to every answer. */
export interface Signature {
  requestId: string;
  /** This hop's Via entry. */
  via: string;
  region: string | undefined;
}

/** JSON body of a refusal: `{"error": message, "status": code}`. */
function refusalBody(r: Refusal): string {
  return JSON.stringify({ error: r.message, status: r.code });
}

/** Answers `res` with the refusal. */
export function refuse(res: ServerResponse, r: Refusal, sig: Signature): void {
  const body = refusalBody(r);
  res.writeHead(r.status, refusalHeaders(r, body, sig));
  res.end(body);
}

/** Answers an upgrade request's raw socket with the refusal, then closes it. */
export function refuseOnSocket(socket: Duplex, r: Refusal, sig: Signature): void {
  const body = refusalBody(r);
  const headers = refusalHeaders(r, body, sig);
  headers.push("Connection", "close");
  socket.end(`${statusLine(r.status, STATUS_CODES[r.status] ?? "")}${headerLines(headers)}\r\n${body}`);
}

function refusalHeaders(r: Refusal, body: string, sig: Signature): string[] {
  const headers = [
    "Content-Type",
    "application/json; charset=utf-8",
    "Content-Length",
    String(Buffer.byteLength(body)),
    "Via",
    sig.via,
    "Fly-Request-Id",
    sig.requestId,
  ];
  if (sig.region !== undefined) headers.push("Fly-Region", sig.region);
  if (r.retryAfter !== undefined) headers.push("Retry-After", String(r.retryAfter));
  return headers;
}

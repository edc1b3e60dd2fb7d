import type { Signature } from "./refusal.js";

/** The Via entry the proxy adds for an HTTP/1.1 hop. */
export const VIA = "1.1 hangar";
const VIA_10 = "1.0 hangar";

/** The Via entry for a message received over HTTP/`major`.`minor`. */
export function viaFor(major: number, minor: number): string {
  return major === 1 && minor === 0 ? VIA_10 : VIA;
}

/** What the proxy knows about a request and tells the machine about it. */
export interface Forwarding extends Signature {
  clientIp: string;
  /** The port the proxy accepted the connection on. */
  localPort: string;
}

/** A client request's headers rewritten for the machine, with what the proxy needs from them. */
export interface UpstreamRequest {
  host: string | undefined;
  /** Flat name/value list, as http.request takes it. */
  headers: string[];
  hasBody: boolean;
  /** The Content-Length the client gave, if any (node has checked that it is one number). */
  contentLength: string | undefined;
  /** The client's W3C trace context, taken out of `headers` unless `upgrade` (the proxy sends its own). */
  traceparent: string | undefined;
  tracestate: string | undefined;
}

// A Connection header may not take away what frames or routes the message.
const NEVER_LISTED = new Set(["host", "content-length", "transfer-encoding"]);

/**
 * Rewrites client request headers for the machine: drops hop-by-hop headers (RFC 9110 §7.6.1)
 * and those named in Connection, replaces Fly-Client-IP, X-Forwarded-Proto/-Port, Fly-Request-Id
 * and Fly-Region, drops Fly-Replay-Src (the proxy adds its own on a replay), and appends to
 * X-Forwarded-For and Via. Transfer-Encoding stays so node frames the body the way the client did.
 * Upgrade and `Connection: Upgrade` stay only when `upgrade`. Traceparent and Tracestate are
 * returned apart and stay out of the list unless `upgrade` (an HTTP request's attempt sends its own
 * span's). One pass over the headers, one list out.
 */
export function upstreamRequest(raw: readonly string[], f: Forwarding, upgrade: boolean): UpstreamRequest {
  const headers: string[] = [];
  let host: string | undefined;
  let traceparent: string | undefined;
  let tracestate: string | undefined;
  let xff: string | undefined;
  let via: string | undefined;
  let connection: string | undefined;
  let upgradeTo: string | undefined;
  let hasBody = false;
  let contentLength: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case "host":
        host ??= value;
        break;
      case "content-length":
        if (value !== "0") hasBody = true;
        contentLength = value;
        break;
      case "transfer-encoding":
        hasBody = true;
        break;
      case "connection":
        connection = connection === undefined ? value : `${connection}, ${value}`;
        continue;
      case "upgrade":
        upgradeTo = value;
        continue;
      case "x-forwarded-for":
        xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      case "via":
        via = via === undefined ? value : `${via}, ${value}`;
        continue;
      case "traceparent":
        traceparent ??= value;
        if (upgrade) break;
        continue;
      case "tracestate":
        tracestate = tracestate === undefined ? value : `${tracestate},${value}`;
        if (upgrade) break;
        continue;
      case "keep-alive":
      case "te":
      case "trailer":
      case "fly-client-ip":
      case "x-forwarded-proto":
      case "x-forwarded-port":
      case "fly-request-id":
      case "fly-region":
      // Only the proxy says where a request was replayed from: apps may trust its state.
      case "fly-replay-src":
        continue;
      default:
        if (lower.startsWith("proxy-")) continue;
    }
    headers.push(name, value);
  }
  if (connection !== undefined) dropListed(headers, connection);
  headers.push(
    "Fly-Client-IP",
    f.clientIp,
    "X-Forwarded-For",
    xff === undefined ? f.clientIp : `${xff}, ${f.clientIp}`,
    "X-Forwarded-Proto",
    "http",
    "X-Forwarded-Port",
    f.localPort,
    "Fly-Request-Id",
    f.requestId,
    "Via",
    via === undefined ? f.via : `${via}, ${f.via}`,
  );
  if (f.region !== undefined) headers.push("Fly-Region", f.region);
  if (upgrade && upgradeTo !== undefined) headers.push("Connection", "Upgrade", "Upgrade", upgradeTo);
  return { host, headers, hasBody, contentLength, traceparent, tracestate };
}

/**
 * Rewrites a machine's response headers for the client: drops hop-by-hop headers (node frames the
 * body itself) and those named in Connection, appends to Via, sets Fly-Request-Id and Fly-Region.
 * Upgrade and `Connection: Upgrade` stay only when `upgrade`.
 */
export function downstreamResponse(
  raw: readonly string[],
  requestId: string,
  via: string,
  region: string | undefined,
  upgrade: boolean,
  /** fly.toml's http_options.response.pristine: none of the proxy's own headers (Via, Fly-Request-Id, Fly-Region). */
  pristine = false,
): string[] {
  const headers: string[] = [];
  let upstreamVia: string | undefined;
  let connection: string | undefined;
  let upgradeTo: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case "connection":
        connection = connection === undefined ? value : `${connection}, ${value}`;
        continue;
      case "upgrade":
        upgradeTo = value;
        continue;
      case "via":
        upstreamVia = upstreamVia === undefined ? value : `${upstreamVia}, ${value}`;
        continue;
      case "keep-alive":
      case "te":
      case "trailer":
      case "transfer-encoding":
      case "fly-request-id":
        continue;
      case "fly-region":
        if (region !== undefined) continue;
        break;
      default:
        if (lower.startsWith("proxy-")) continue;
    }
    headers.push(name, value);
  }
  if (connection !== undefined) dropListed(headers, connection);
  if (pristine) {
    if (upstreamVia !== undefined) headers.push("Via", upstreamVia);
  } else {
    headers.push(
      "Via",
      upstreamVia === undefined ? via : `${upstreamVia}, ${via}`,
      "Fly-Request-Id",
      requestId,
    );
    if (region !== undefined) headers.push("Fly-Region", region);
  }
  if (upgrade && upgradeTo !== undefined) headers.push("Connection", "Upgrade", "Upgrade", upgradeTo);
  return headers;
}

// Removes, in place, the headers a Connection header names as hop-by-hop.
function dropListed(headers: string[], connection: string): void {
  const c = connection.toLowerCase();
  if (c === "keep-alive" || c === "close" || c === "upgrade") return;
  const listed: string[] = [];
  for (const token of c.split(",")) {
    const t = token.trim();
    if (t === "" || t === "keep-alive" || t === "close" || t === "upgrade" || NEVER_LISTED.has(t)) continue;
    listed.push(t);
  }
  if (listed.length === 0) return;
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    const name = headers[r] as string;
    if (listed.includes(name.toLowerCase())) continue;
    headers[w++] = name;
    headers[w++] = headers[r + 1] as string;
  }
  headers.length = w;
}

import type { Transform } from "node:stream";
import { constants, createBrotliCompress, createDeflate, createGzip } from "node:zlib";

// fly.toml's http_options.compress: the proxy compresses an app's responses for clients that accept
// it, as Fly's does. What qualifies follows nginx's gzip module (min length, types, no-transform, a
// weak ETag, Vary) and RFC 9110's content negotiation.

/** A content coding the proxy compresses in, best first. */
export type Encoding = "br" | "gzip" | "deflate";

/** Bodies shorter than this (by their Content-Length) gain too little to compress. */
export const MIN_COMPRESS_LENGTH = 1024;

/**
 * The coding to compress in for a request's Accept-Encoding (RFC 9110 §12.5.3): of br, gzip and
 * deflate, the one with the highest q-value, ties going to br, then gzip, then deflate. A coding the
 * header does not name takes the q-value of `*`, else is not acceptable; q=0 refuses it. None
 * without the header: a client that says nothing gets the body as the machine sent it.
 */
export function negotiateEncoding(accept: string | undefined): Encoding | undefined {
  if (!accept) return undefined;
  let br: number | undefined;
  let gzip: number | undefined;
  let xGzip: number | undefined;
  let deflate: number | undefined;
  let any: number | undefined;
  for (const part of accept.split(",")) {
    const semi = part.indexOf(";");
    const coding = (semi === -1 ? part : part.slice(0, semi)).trim().toLowerCase();
    const q = semi === -1 ? 1 : qValue(part.slice(semi + 1));
    if (coding === "br") br = q;
    else if (coding === "gzip") gzip = q;
    else if (coding === "x-gzip") xGzip = q;
    else if (coding === "deflate") deflate = q;
    else if (coding === "*") any = q;
  }
  const qBr = br ?? any ?? 0;
  const qGzip = gzip ?? xGzip ?? any ?? 0;
  const qDeflate = deflate ?? any ?? 0;
  const best = Math.max(qBr, qGzip, qDeflate);
  if (best <= 0) return undefined;
  if (qBr === best) return "br";
  if (qGzip === best) return "gzip";
  return "deflate";
}

/** The q parameter of a coding's parameters (`q=0.5`); 1 when absent, 0 when it is not a number. */
function qValue(params: string): number {
  for (const param of params.split(";")) {
    const eq = param.indexOf("=");
    if (eq === -1 || param.slice(0, eq).trim().toLowerCase() !== "q") continue;
    const q = Number(param.slice(eq + 1).trim());
    return Number.isFinite(q) ? Math.min(1, Math.max(0, q)) : 0;
  }
  return 1;
}

const COMPRESSIBLE = new Set([
  "application/json",
  "application/javascript",
  "application/x-javascript",
  "application/ecmascript",
  "application/xml",
  "application/wasm",
  "image/svg+xml",
]);

/**
 * Whether a Content-Type is worth compressing: text (but event streams, which must reach the client
 * as written), JSON, JavaScript, XML (`+json`, `+xml` types too), SVG and WebAssembly. Images,
 * video, audio, archives and `application/octet-stream` are compressed already or unknown.
 */
export function isCompressible(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(";");
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type.startsWith("text/")) return type !== "text/event-stream";
  return COMPRESSIBLE.has(type) || type.endsWith("+json") || type.endsWith("+xml");
}

const NO_TRANSFORM = /(?:^|,)\s*no-transform\s*(?:,|$)/i;

/**
 * The coding to compress a response in, or undefined when it goes as the machine sent it: a HEAD, a
 * status without a body (1xx, 204, 304) or a partial one (206), a body already encoded
 * (Content-Encoding), `Cache-Control: no-transform`, a type not worth it (isCompressible), a
 * Content-Length under MIN_COMPRESS_LENGTH, or a client that accepts none of the codings.
 * `headers` is the response's list as the client gets it (name, value pairs); `requestHeaders` the
 * request's raw list.
 */
export function compressionFor(
  method: string | undefined,
  requestHeaders: readonly string[],
  status: number,
  headers: readonly string[],
): Encoding | undefined {
  if (method === "HEAD" || status < 200 || status === 204 || status === 206 || status === 304)
    return undefined;
  let contentType: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const value = headers[i + 1] as string;
    switch ((headers[i] as string).toLowerCase()) {
      case "content-encoding":
        return undefined;
      case "cache-control":
        if (NO_TRANSFORM.test(value)) return undefined;
        break;
      case "content-type":
        contentType ??= value;
        break;
      case "content-length":
        if (Number(value) < MIN_COMPRESS_LENGTH) return undefined;
        break;
    }
  }
  if (!isCompressible(contentType)) return undefined;
  return negotiateEncoding(headerValue(requestHeaders, "accept-encoding"));
}

/** The values of a request's headers of that (lower-case) name, joined as one list; undefined when none. */
function headerValue(raw: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== name) continue;
    const v = raw[i + 1] as string;
    value = value === undefined ? v : `${value}, ${v}`;
  }
  return value;
}

/**
 * Rewrites a response's headers, in place, for its body compressed in `encoding`, as nginx does:
 * no Content-Length (the body is chunked) nor Accept-Ranges (ranges of the compressed body are not
 * served), a strong ETag made weak (the bytes differ, the meaning does not), Accept-Encoding added
 * to Vary (to an existing one), and Content-Encoding set.
 */
export function compressedHeaders(headers: string[], encoding: Encoding): void {
  let w = 0;
  let vary = -1;
  let varies = false;
  for (let r = 0; r < headers.length; r += 2) {
    const name = headers[r] as string;
    let value = headers[r + 1] as string;
    switch (name.toLowerCase()) {
      case "content-length":
      case "accept-ranges":
        continue;
      case "etag":
        if (!value.startsWith("W/")) value = `W/${value}`;
        break;
      case "vary":
        vary = w;
        if (/(?:^|,)\s*(?:\*|accept-encoding)\s*(?:,|$)/i.test(value)) varies = true;
        break;
    }
    headers[w++] = name;
    headers[w++] = value;
  }
  headers.length = w;
  if (!varies) {
    const current = vary === -1 ? "" : (headers[vary + 1] as string).trim();
    if (current === "") {
      if (vary === -1) headers.push("Vary", "Accept-Encoding");
      else headers[vary + 1] = "Accept-Encoding";
    } else headers[vary + 1] = `${current}, Accept-Encoding`;
  }
  headers.push("Content-Encoding", encoding);
}

/** Brotli at quality 4: most of its gain over gzip at a fraction of the CPU of its default (11). */
const BROTLI_QUALITY = 4;
/** gzip's and deflate's level: zlib's default. */
const ZLIB_LEVEL = 6;

/**
 * A compressor for `encoding` that flushes what it has after each chunk written to it, so that a
 * streamed answer reaches the client as it comes, not once enough has gathered.
 */
export function compressor(encoding: Encoding): Transform {
  switch (encoding) {
    case "br":
      return createBrotliCompress({
        flush: constants.BROTLI_OPERATION_FLUSH,
        params: { [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY },
      });
    case "gzip":
      return createGzip({ level: ZLIB_LEVEL, flush: constants.Z_SYNC_FLUSH });
    case "deflate":
      // HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2), not raw deflate.
      return createDeflate({ level: ZLIB_LEVEL, flush: constants.Z_SYNC_FLUSH });
  }
}

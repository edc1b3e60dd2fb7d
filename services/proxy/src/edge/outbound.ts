import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { networkInterfaces } from "node:os";
import { EDGE_BODY_MAX_BYTES, type EdgeHttpRequest, type EdgeHttpResponse } from "@hangar/edge";
import { isPrivateAddress, publicOnlyLookup } from "@hangar/service";

/** An edge app's fetch the proxy will not send, and why. */
export class EdgeFetchRefusedError extends Error {
  override readonly name = "EdgeFetchRefusedError";
}

/** How long the host's own addresses are kept before they are read again. */
const OWN_ADDRESSES_TTL_MS = 5_000;
let own: { at: number; addresses: Set<string> } | undefined;

/** This host's own addresses (every interface's), read at most every OWN_ADDRESSES_TTL_MS. */
function ownAddresses(): Set<string> {
  const now = Date.now();
  if (own === undefined || now - own.at > OWN_ADDRESSES_TTL_MS) {
    const addresses = new Set<string>();
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) addresses.add(a.address.replace(/%.*$/, "").toLowerCase());
    }
    own = { at: now, addresses };
  }
  return own.addresses;
}

/**
 * Whether an edge app's fetch may not go to `address`: the addresses the platform refuses its
 * outbound requests on a user's behalf (libs/service isPrivateAddress: loopback, private, link-local,
 * the machines' 6PN and the rest), and this host's own addresses, public ones included (the control
 * plane's ports may listen on any of them).
 */
export function refusedForEdge(address: string): boolean {
  if (isPrivateAddress(address)) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  return ownAddresses().has((mapped ?? address).toLowerCase());
}

function refusal(host: string, address: string): EdgeFetchRefusedError {
  return new EdgeFetchRefusedError(
    `${host} is ${address}, an address of this host or a private one, which edge apps may not fetch`,
  );
}

/** Where a fetch goes and how its address is checked. */
export interface Destination {
  url: URL;
  /** Connect here instead of the URL's host (the proxy's own internal listener); no address check. */
  via?: { host: string; port: number };
  /** Replaces the Host header (a `.internal` fetch names the app as the proxy routes it). */
  hostHeader?: string;
  /** Refuses addresses (default refusedForEdge); checked on the resolved address, not only the name. */
  isRefused?: (address: string) => boolean;
}

// Headers that describe one hop, or that the proxy sets from the request itself.
const NOT_SENT = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "host",
  "content-length",
  "proxy-connection",
]);

/**
 * Sends an edge app's request (its body whole) and reads the answer whole, up to EDGE_BODY_MAX_BYTES.
 * Redirects are not followed: the app sees them. Rejects with EdgeFetchRefusedError for a refused
 * address (an IP literal, or any address the name resolves to, checked at connect time so a second
 * lookup cannot swap it).
 */
export function sendOutbound(
  req: EdgeHttpRequest,
  dest: Destination,
  signal: AbortSignal,
): Promise<EdgeHttpResponse> {
  const { url } = dest;
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(
      new EdgeFetchRefusedError(`${url.protocol} URLs cannot be fetched (http and https only)`),
    );
  }
  const headers: [string, string][] = [];
  for (const [name, value] of req.headers) if (!NOT_SENT.has(name)) headers.push([name, value]);
  headers.push(["host", dest.hostHeader ?? url.host]);
  const body = req.body ?? new Uint8Array(0);
  if (body.byteLength > 0 || !["GET", "HEAD", "OPTIONS", "DELETE"].includes(req.method)) {
    headers.push(["content-length", String(body.byteLength)]);
  }
  let lookup: LookupFunction | undefined;
  if (dest.via === undefined) {
    const isRefused = dest.isRefused ?? refusedForEdge;
    const literal = url.hostname.replace(/^\[(.*)\]$/, "$1");
    if (isIP(literal) !== 0) {
      if (isRefused(literal)) return Promise.reject(refusal(literal, literal));
    } else {
      lookup = publicOnlyLookup(refusal, isRefused);
    }
  }
  const send = url.protocol === "https:" && dest.via === undefined ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const out = send({
      protocol: dest.via === undefined ? url.protocol : "http:",
      hostname: dest.via?.host ?? url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: dest.via?.port ?? url.port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers: headers.flat(),
      signal,
      agent: false,
      ...(lookup ? { lookup } : {}),
    });
    out.once("error", reject);
    out.once("response", (res) => readAnswer(res).then(resolve, reject));
    out.end(body.byteLength > 0 ? body : undefined);
  });
}

function readAnswer(res: IncomingMessage): Promise<EdgeHttpResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > EDGE_BODY_MAX_BYTES) {
        res.destroy(
          new Error(`the response body is over ${EDGE_BODY_MAX_BYTES} bytes, the most an edge app takes`),
        );
        return;
      }
      chunks.push(chunk);
    });
    res.once("error", reject);
    res.once("end", () => {
      const headers: [string, string][] = [];
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        headers.push([(res.rawHeaders[i] as string).toLowerCase(), res.rawHeaders[i + 1] as string]);
      }
      resolve({
        status: res.statusCode ?? 502,
        statusText: res.statusMessage ?? "",
        headers,
        body: Buffer.concat(chunks, size),
      });
    });
  });
}

import { BlockList, isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { type EdgeHttpRequest, type EdgeHttpResponse, httpFetch } from "@hangar/edge";
import { isPrivateAddress, publicOnlyLookup } from "@hangar/service";

/** An edge app's fetch the proxy will not send, and why. */
export class EdgeFetchRefusedError extends Error {
  override readonly name = "EdgeFetchRefusedError";
}

/** How long the host's own addresses are kept before they are read again. */
const OWN_ADDRESSES_TTL_MS = 5_000;
let own: { at: number; addresses: BlockList } | undefined;

/**
 * This host's own addresses (every interface's), read at most every OWN_ADDRESSES_TTL_MS. A
 * BlockList matches an IPv4 address in its IPv4-mapped IPv6 forms too (`::ffff:c000:202` as the
 * URL parser writes `[::ffff:192.0.2.2]`), and an IPv6 one however it is written.
 */
function ownAddresses(): BlockList {
  const now = Date.now();
  if (own === undefined || now - own.at > OWN_ADDRESSES_TTL_MS) {
    const addresses = new BlockList();
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) {
        const address = a.address.replace(/%.*$/, "");
        const family = isIP(address);
        if (family !== 0) addresses.addAddress(address, family === 4 ? "ipv4" : "ipv6");
      }
    }
    own = { at: now, addresses };
  }
  return own.addresses;
}

/**
 * Whether an edge app's fetch may not go to `address`: the addresses the platform refuses its
 * outbound requests on a user's behalf (libs/service isPrivateAddress: loopback, private, link-local,
 * the machines' 6PN and the rest), and this host's own addresses, public ones included (the control
 * plane's ports may listen on any of them), in any form.
 */
export function refusedForEdge(address: string): boolean {
  if (isPrivateAddress(address)) return true;
  const family = isIP(address);
  return ownAddresses().check(address, family === 4 ? "ipv4" : "ipv6");
}

/** The refusal names the host the app asked for, never the address it resolved to (kept from the app). */
function refusal(host: string): EdgeFetchRefusedError {
  return new EdgeFetchRefusedError(
    `${host} is or resolves to an address of this host or a private one, which edge apps may not fetch`,
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

/**
 * Sends an edge app's request with httpFetch (libs/edge: the body whole both ways, at most
 * EDGE_BODY_MAX_BYTES back, redirects not followed, bodies not decoded). Rejects with
 * EdgeFetchRefusedError for a refused address: an IP literal, or any address the name resolves to,
 * checked at connect time so a second lookup cannot swap it.
 */
export function sendOutbound(
  app: string,
  req: EdgeHttpRequest,
  dest: Destination,
  signal: AbortSignal,
): Promise<EdgeHttpResponse> {
  const { url, via } = dest;
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(
      new EdgeFetchRefusedError(`${url.protocol} URLs cannot be fetched (http and https only)`),
    );
  }
  if (via !== undefined) {
    const headers: [string, string][] = req.headers.filter(([name]) => name.toLowerCase() !== "host");
    headers.push(["host", dest.hostHeader ?? url.host]);
    const inside = `http://${via.host}:${via.port}${url.pathname}${url.search}`;
    return httpFetch(app, { ...req, url: inside, headers }, signal);
  }
  const isRefused = dest.isRefused ?? refusedForEdge;
  const literal = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (isIP(literal) !== 0) {
    return isRefused(literal) ? Promise.reject(refusal(literal)) : httpFetch(app, req, signal);
  }
  return httpFetch(app, req, signal, { lookup: publicOnlyLookup(refusal, isRefused) });
}

import { createHash } from "node:crypto";
import { lookup as dnsLookup } from "node:dns";
import { createWriteStream } from "node:fs";
import { utimes } from "node:fs/promises";
import { get as httpGet, type IncomingMessage } from "node:http";
import { get as httpsGet } from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { pipeline } from "node:stream/promises";

/*
 * ADD <url>: the builder downloads the file itself, as BuildKit does, but as a build's RUN would
 * reach it: never an address of the host or its networks (loopback, private, link-local, the
 * machines' 6PN), so a Dockerfile cannot read the control plane (NATS, the gateway, ops ports)
 * into an image. Every address a name resolves to is checked, and the connection goes to the
 * checked address, so a second lookup cannot swap it.
 */

/** Addresses a build may never fetch from. */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 3],
] as const) {
  PRIVATE.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, "ipv6");
}

/** A download ADD cannot make: the message names the URL and what to do. */
export class UrlFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UrlFetchError";
  }
}

/** True when a build may not reach `address` (an IP literal). */
export function isPrivateAddress(address: string): boolean {
  // An IPv4-mapped IPv6 address is judged as its IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return isPrivateAddress(mapped[1] as string);
  const family = isIP(address);
  if (family === 0) return true;
  return PRIVATE.check(address, family === 4 ? "ipv4" : "ipv6");
}

const publicLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, "", 4);
    const usable = addresses.filter((a) => !isPrivateAddress(a.address));
    const first = usable[0];
    if (!first || usable.length < addresses.length) {
      const e = new UrlFetchError(`${hostname} resolves to an address builds may not reach`) as Error & {
        code?: string;
      };
      e.code = "EHANGARPRIVATE";
      return callback(e, "", 4);
    }
    if ((options as { all?: boolean }).all) return callback(null, [first] as never, first.family);
    return callback(null, first.address, first.family);
  });
};

/** What a download gave: its digest and the server's Last-Modified, which ADD keeps as the file's mtime. */
export interface Downloaded {
  digest: string;
  size: number;
  lastModified: Date | undefined;
}

const MAX_REDIRECTS = 10;

/**
 * Downloads `url` into `file` (following redirects, each checked the same way), checking `checksum`
 * (`sha256:<hex>`) when given; sets the file's mtime from Last-Modified.
 */
export async function downloadUrl(
  url: string,
  file: string,
  opts: { checksum?: string; signal?: AbortSignal } = {},
): Promise<Downloaded> {
  let current = new URL(url);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    if (current.protocol !== "http:" && current.protocol !== "https:") {
      throw new UrlFetchError(`${url}: only http and https URLs can be downloaded`);
    }
    const literal = current.hostname.replace(/^\[|\]$/g, "");
    if (isIP(literal) !== 0 && isPrivateAddress(literal)) {
      throw new UrlFetchError(`${url}: ${literal} is an address builds may not reach`);
    }
    const res = await request(current, opts.signal, url);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      current = new URL(res.headers.location, current);
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new UrlFetchError(`${url}: the server answered ${status}`);
    }
    const hash = createHash("sha256");
    let size = 0;
    res.on("data", (b: Buffer) => {
      hash.update(b);
      size += b.length;
    });
    await pipeline(res, createWriteStream(file, { mode: 0o600 }), { signal: opts.signal });
    const digest = `sha256:${hash.digest("hex")}`;
    if (opts.checksum !== undefined && digest !== opts.checksum) {
      throw new UrlFetchError(
        `${url}: the download has digest ${digest}, not the --checksum ${opts.checksum}`,
      );
    }
    const modified = res.headers["last-modified"] ? new Date(res.headers["last-modified"]) : undefined;
    const lastModified = modified && !Number.isNaN(modified.getTime()) ? modified : undefined;
    if (lastModified) await utimes(file, lastModified, lastModified);
    return { digest, size, lastModified };
  }
  throw new UrlFetchError(`${url}: more than ${MAX_REDIRECTS} redirects`);
}

function request(url: URL, signal: AbortSignal | undefined, original: string): Promise<IncomingMessage> {
  const get = url.protocol === "https:" ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const req = get(url, { lookup: publicLookup, timeout: 60_000, ...(signal ? { signal } : {}) }, resolve);
    req.once("timeout", () => req.destroy(new UrlFetchError(`${original}: no answer in 60 s`)));
    req.once("error", (err: Error & { code?: string }) => {
      reject(new UrlFetchError(`${original}: ${err.message}`));
    });
  });
}

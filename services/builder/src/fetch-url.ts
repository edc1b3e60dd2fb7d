import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { utimes } from "node:fs/promises";
import { get as httpGet, type IncomingMessage } from "node:http";
import { get as httpsGet } from "node:https";
import { isIP } from "node:net";
import { pipeline } from "node:stream/promises";
import { isPrivateAddress, publicOnlyLookup } from "@hangar/service";

/*
 * ADD <url>: the builder downloads the file itself, as BuildKit does, but as a build's RUN would
 * reach it: never an address of the host or its networks (loopback, private, link-local, the
 * machines' 6PN), so a Dockerfile cannot read the control plane (NATS, the gateway, ops ports)
 * into an image. Every address a name resolves to is checked, and the connection goes to the
 * checked address, so a second lookup cannot swap it.
 */

/** A download ADD cannot make: the message names the URL and what to do. */
export class UrlFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UrlFetchError";
  }
}

const publicLookup = publicOnlyLookup((hostname) => {
  const e = new UrlFetchError(`${hostname} resolves to an address builds may not reach`) as Error & {
    code?: string;
  };
  e.code = "EHANGARPRIVATE";
  return e;
});

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

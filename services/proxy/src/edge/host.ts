import {
  type EdgeHost,
  type EdgeHttpRequest,
  type EdgeHttpResponse,
  type EdgeImageOp,
  type EdgeImageResult,
  type EdgeLogLevel,
  transformImage,
} from "@hangar/edge";
import { EdgeFetchRefusedError, sendOutbound } from "./outbound.js";

/** What an edge app's cache is kept in (KvEdgeCache in the platform). */
export interface EdgeCacheStore {
  get(app: string, key: string): Promise<Uint8Array | undefined>;
  set(app: string, key: string, value: Uint8Array, ttlSeconds?: number): Promise<void>;
  delete(app: string, key: string): Promise<boolean>;
}

export interface ProxyEdgeHostOptions {
  /** This proxy's listener without edge code in front (EdgeProxy.internal), on loopback. */
  internal: () => { host: string; port: number };
  /** The proxy's first domain: `<app>.<domain>` is the Host an `.internal` fetch is routed by. */
  domain: string;
  /** The app's private network (`<org>/<network>`), undefined for no such app: `.internal` stays inside one. */
  privateNetworkOf(app: string): string | undefined;
  cache: EdgeCacheStore;
  log(app: string, level: EdgeLogLevel, message: string): void;
  /** Judges the addresses a fetch to the network may reach (default refusedForEdge); tests widen it. */
  isRefused?: (address: string) => boolean;
}

const INTERNAL = ".internal";

/**
 * What an edge app reaches from inside a proxy: `<app>.internal[:port]` through this proxy's own
 * routing and balancing (its internal listener: machines, woken if they sleep, never an edge app's
 * code, so a fetch of its own name cannot loop), only within the app's private network; any other
 * URL to the network, never to this host or a private address (checked on the resolved address);
 * its cache, scoped by app; its console lines to `hangar logs`; image operations.
 */
export class ProxyEdgeHost implements EdgeHost {
  constructor(private readonly opts: ProxyEdgeHostOptions) {}

  fetch(app: string, req: EdgeHttpRequest, signal: AbortSignal): Promise<EdgeHttpResponse> {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return Promise.reject(new TypeError(`${req.url} is not a URL`));
    }
    const name = url.hostname.toLowerCase().replace(/\.$/, "");
    if (!name.endsWith(INTERNAL)) {
      return sendOutbound(
        app,
        req,
        { url, ...(this.opts.isRefused ? { isRefused: this.opts.isRefused } : {}) },
        signal,
      );
    }
    const target = name.slice(0, -INTERNAL.length);
    if (target.includes(".") || target === "") {
      return Promise.reject(
        new EdgeFetchRefusedError(`${name}: an edge app reaches other apps as <app>.internal only`),
      );
    }
    const network = this.opts.privateNetworkOf(app);
    if (network === undefined || this.opts.privateNetworkOf(target) !== network) {
      return Promise.reject(
        new EdgeFetchRefusedError(`${name}: no app ${target} in this app's private network`),
      );
    }
    // The port names the machines' service, which the proxy's routing knows: it is not used.
    return sendOutbound(
      app,
      req,
      { url, via: this.opts.internal(), hostHeader: `${target}.${this.opts.domain}` },
      signal,
    );
  }

  log(app: string, level: EdgeLogLevel, message: string): void {
    this.opts.log(app, level, message);
  }

  /** `@fly/image`: sharp, on libuv's threads (libs/edge transformImage, the dev host's too). */
  image(_app: string, input: Uint8Array, ops: EdgeImageOp[]): Promise<EdgeImageResult> {
    return transformImage(input, ops);
  }

  cacheGet(app: string, key: string): Promise<Uint8Array | undefined> {
    return this.opts.cache.get(app, key);
  }

  cacheSet(app: string, key: string, value: Uint8Array, ttlSeconds?: number): Promise<void> {
    return this.opts.cache.set(app, key, value, ttlSeconds);
  }

  cacheDelete(app: string, key: string): Promise<boolean> {
    return this.opts.cache.delete(app, key);
  }
}

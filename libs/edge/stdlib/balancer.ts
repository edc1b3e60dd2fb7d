import { proxy } from "./proxy.js";
import { bufferBody, type RequestInput, rebuildRequest, toRequest } from "./request.js";

/** A backend: an origin URL (sent through `proxy`) or a fetch-like function. */
export type Backend = string | URL | ((request: Request) => Promise<Response>);

export interface BalancerOptions {
  /** How fast a backend's record fades: a status or error weighs half as much after this long. */
  halfLifeMs?: number;
  /** A backend whose health is at least this is healthy; two healthy ones are told apart by load. */
  healthyAbove?: number;
  /**
   * Which requests are sent again to another backend after an error or a 5xx: `all` (the default:
   * their bodies are buffered, so any request can be replayed) or only `idempotent` methods.
   */
  retry?: "all" | "idempotent";
  /** The clock, in ms (tests). */
  now?: () => number;
  /** A number in [0, 1) (tests). */
  random?: () => number;
}

/** What the balancer knows of one backend. */
export interface BackendStats {
  readonly name: string;
  /** Requests sent to it, retries included. */
  readonly requests: number;
  /** Of those, the ones that failed (an error or a 5xx). */
  readonly failures: number;
  /** Requests it is answering now. */
  readonly inflight: number;
  /** 1 for a backend without recent failures, falling toward 0 as recent requests fail. */
  health(): number;
}

export interface BalancerFetch {
  (input: RequestInput, init?: RequestInit): Promise<Response>;
  readonly backends: readonly BackendStats[];
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

class TrackedBackend implements BackendStats {
  requests = 0;
  failures = 0;
  inflight = 0;
  /** Successes and failures, each decayed by its age. */
  private recentOk = 0;
  private recentFailed = 0;
  private decayedAt: number;

  constructor(
    readonly name: string,
    readonly send: (request: Request) => Promise<Response>,
    private readonly halfLifeMs: number,
    private readonly now: () => number,
  ) {
    this.decayedAt = now();
  }

  private decay(): void {
    const now = this.now();
    const factor = 0.5 ** ((now - this.decayedAt) / this.halfLifeMs);
    this.recentOk *= factor;
    this.recentFailed *= factor;
    this.decayedAt = now;
  }

  /**
   * The share of recent requests that succeeded, with one success assumed in advance: one failure
   * among many successes barely moves it, and as a failure fades with time the health returns to 1,
   * so a backend that stopped getting requests is tried again.
   */
  health(): number {
    this.decay();
    return 1 - this.recentFailed / (this.recentOk + this.recentFailed + 1);
  }

  record(ok: boolean): void {
    this.decay();
    if (ok) this.recentOk += 1;
    else {
      this.recentFailed += 1;
      this.failures += 1;
    }
  }
}

function backendName(backend: Backend, index: number): string {
  if (typeof backend === "function") return (backend as { origin?: string }).origin ?? `backend ${index}`;
  return new URL(backend).href;
}

/**
 * A fetch-like function that spreads requests over `backends` by two random choices: of two backends
 * drawn at random, the healthier one (or, both healthy, the one answering fewer requests now). Health
 * comes from each backend's recent statuses and errors, decaying with time. A request that gets an
 * error or a 5xx is sent again to a backend not tried yet for it (see `retry`); when every backend
 * failed, the client gets the last 5xx, or 502 when none answered.
 */
export function balancer(backends: Backend[], options: BalancerOptions = {}): BalancerFetch {
  if (backends.length === 0) throw new TypeError("balancer: no backends");
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const healthyAbove = options.healthyAbove ?? 0.9;
  const tracked = backends.map((backend, i) => {
    const send = typeof backend === "function" ? backend : proxy(backend);
    return new TrackedBackend(backendName(backend, i), send, options.halfLifeMs ?? 5_000, now);
  });

  const better = (a: TrackedBackend, b: TrackedBackend): TrackedBackend => {
    const ha = a.health();
    const hb = b.health();
    if (ha >= healthyAbove && hb >= healthyAbove) return b.inflight < a.inflight ? b : a;
    return hb > ha ? b : a;
  };
  const choose = (tried: Set<TrackedBackend>): TrackedBackend | undefined => {
    const left = tracked.filter((b) => !tried.has(b));
    if (left.length <= 1) return left[0];
    const i = Math.floor(random() * left.length);
    const j = (i + 1 + Math.floor(random() * (left.length - 1))) % left.length;
    return better(left[i] as TrackedBackend, left[j] as TrackedBackend);
  };

  const fn = async (input: RequestInput, init?: RequestInit): Promise<Response> => {
    const request = toRequest(input, init);
    const body = await bufferBody(request);
    const retryable = options.retry !== "idempotent" || IDEMPOTENT.has(request.method);
    const tried = new Set<TrackedBackend>();
    let lastFailure: Response | undefined;
    let lastError: unknown;
    for (let backend = choose(tried); backend; backend = retryable ? choose(tried) : undefined) {
      tried.add(backend);
      backend.requests += 1;
      backend.inflight += 1;
      let response: Response;
      try {
        response = await backend.send(rebuildRequest(request, request.url, body));
      } catch (err) {
        backend.record(false);
        lastError = err;
        continue;
      } finally {
        backend.inflight -= 1;
      }
      const failed = response.status >= 500;
      backend.record(!failed);
      if (!failed) return response;
      // Read to its end so the connection can serve another request.
      if (lastFailure) await lastFailure.arrayBuffer().catch(() => undefined);
      lastFailure = response;
    }
    if (lastFailure) return lastFailure;
    const why = lastError instanceof Error ? lastError.message : String(lastError);
    return new Response(`no backend answered: ${why}\n`, { status: 502 });
  };
  return Object.assign(fn, { backends: tracked as readonly BackendStats[] });
}

export default balancer;

// A Machines API client over several gateway replicas, as an operator's client behind a load
// balancer behaves: a request whose connection is refused or reset goes to the next gateway, a
// mutation always with its Idempotency-Key (the same on every try), so a retry replays or takes over
// the first attempt and never acts twice. Used by the gateway-kill test and `pnpm bench replicas`.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

export interface FailoverResponse<T = unknown> {
  status: number;
  body: T;
  /** How many tries it took (1: the first gateway answered). */
  tries: number;
  /** Whether the answer was a replay of an earlier try's (Idempotent-Replayed). */
  replayed: boolean;
}

export interface FailoverStats {
  requests: number;
  /** Tries sent again because a gateway's connection was refused or reset. */
  connectionRetries: number;
  /** Of those, tries of a mutation (with its key): the first try may have acted on the dead gateway. */
  mutationRetries: number;
  /** Tries sent again after a 503 or a key still in progress (409 naming the Idempotency-Key). */
  busyRetries: number;
}

/** Whether a fetch failed on the connection (refused, reset, closed), not with an HTTP answer. */
function isConnectionFailure(err: unknown): boolean {
  return (
    err instanceof TypeError &&
    /fetch failed|terminated|other side closed/i.test(err.message + String(err.cause))
  );
}

export class FailoverClient {
  readonly stats: FailoverStats = { requests: 0, connectionRetries: 0, mutationRetries: 0, busyRetries: 0 };
  #next = 0;

  /** `gateways`: the replicas' base URLs (`http://127.0.0.1:<port>`); requests start round-robin. */
  constructor(
    private readonly gateways: readonly string[],
    private readonly token: string,
    private readonly opts: { deadlineMs?: number; only?: number } = {},
  ) {}

  /**
   * Sends `method path` (under /v1) until a gateway answers something other than "come back": a
   * mutation with an Idempotency-Key (one per call unless `key` is given). Throws when no gateway
   * answered within the deadline (60 s by default).
   */
  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    key: string | undefined = method === "GET" ? undefined : randomUUID(),
  ): Promise<FailoverResponse<T>> {
    this.stats.requests++;
    const deadline = Date.now() + (this.opts.deadlineMs ?? 60_000);
    let at = this.opts.only ?? this.#next++ % this.gateways.length;
    for (let tries = 1; ; tries++) {
      const base = this.gateways[at] as string;
      let res: Response;
      try {
        res = await fetch(`${base}/v1${path}`, {
          method,
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
            ...(key ? { "idempotency-key": key } : {}),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      } catch (err) {
        if (!isConnectionFailure(err) || Date.now() > deadline) throw err;
        this.stats.connectionRetries++;
        if (key) this.stats.mutationRetries++;
        if (this.opts.only === undefined) at = (at + 1) % this.gateways.length;
        else await sleep(100);
        continue;
      }
      const text = await res.text();
      const parsed = (text ? JSON.parse(text) : undefined) as T;
      const comeBack =
        res.status === 503 ||
        (res.status === 409 &&
          /Idempotency-Key/.test((parsed as { error?: string } | undefined)?.error ?? ""));
      if (comeBack && Date.now() < deadline) {
        this.stats.busyRetries++;
        await sleep(200);
        continue;
      }
      return {
        status: res.status,
        body: parsed,
        tries,
        replayed: res.headers.get("idempotent-replayed") === "true",
      };
    }
  }

  /** `call`, throwing unless the answer is a 2xx. */
  async ok<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.call<T>(method, path, body);
    if (res.status < 200 || res.status >= 300)
      throw new Error(
        `${method} ${path}: ${res.status} ${JSON.stringify(res.body)} after ${res.tries} tries`,
      );
    return res.body;
  }
}

// The API load of the replica checks and of `pnpm bench replicas`: workers that each, in a loop,
// create a machine (skip_launch: the control plane is measured, not the host agent; placement still
// reserves room), read it and the app's list, and destroy it, through a FailoverClient (an
// Idempotency-Key on each create and destroy).
import { helloConfig } from "../platform/harness.js";
import type { FailoverClient } from "./failover-client.js";

export interface ApiLoadResult {
  /** Requests answered 2xx, and how long the load ran (ms). */
  succeeded: number;
  elapsedMs: number;
  /** Every request that did not end in a 2xx, in words. */
  failures: string[];
  /** Machine ids the API answered a create with. */
  acknowledged: Set<string>;
  /** Creates answered by a replay of an earlier try's answer. */
  replays: number;
  /** Unix ms of each 2xx create and destroy answer (the accepted writes), in order of arrival. */
  writeTimes: number[];
}

/**
 * Starts the load; it runs until `until()` says stop (checked between iterations). `live` fills as
 * answers come; `done` resolves with it when every worker stopped.
 */
export function startApiLoad(
  client: FailoverClient,
  opts: { app: string; workers: number; until: () => boolean; tag?: string },
): { live: ApiLoadResult; done: Promise<ApiLoadResult> } {
  const r: ApiLoadResult = {
    succeeded: 0,
    elapsedMs: 0,
    failures: [],
    acknowledged: new Set(),
    replays: 0,
    writeTimes: [],
  };
  const started = Date.now();
  const expect2xx = (what: string, res: { status: number; body: unknown }) => {
    if (res.status >= 200 && res.status < 300) {
      r.succeeded++;
      return true;
    }
    r.failures.push(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
    return false;
  };
  const worker = async (w: number) => {
    for (let i = 0; !opts.until(); i++) {
      const name = `${opts.tag ?? "w"}${w}-${i}`;
      try {
        const created = await client.call<{ id: string }>("POST", `/apps/${opts.app}/machines`, {
          name,
          config: helloConfig(),
          skip_launch: true,
        });
        if (!expect2xx(`create ${name}`, created)) continue;
        r.writeTimes.push(Date.now());
        if (created.replayed) r.replays++;
        r.acknowledged.add(created.body.id);
        const machine = `/apps/${opts.app}/machines/${created.body.id}`;
        expect2xx(`GET ${machine}`, await client.call("GET", machine));
        expect2xx(
          `GET list of ${opts.app}`,
          await client.call("GET", `/apps/${opts.app}/machines?summary=true`),
        );
        if (expect2xx(`DELETE ${machine}`, await client.call("DELETE", machine)))
          r.writeTimes.push(Date.now());
      } catch (err) {
        r.failures.push(`${name}: ${String(err)}`);
      }
    }
  };
  const done = Promise.all(Array.from({ length: opts.workers }, (_, w) => worker(w))).then(() => {
    r.elapsedMs = Date.now() - started;
    return r;
  });
  return { live: r, done };
}

import type { MiddlewareHandler } from "hono";
import type { ApiEnv } from "./context.js";
import { ApiError } from "./errors.js";

/**
 * What a gateway replica knows of apps and machines, and how to bring it up to what is stored:
 * `storedSeq` is the last stream sequence of the aggregate (0 when it has none), `foldedSeq` how far
 * this replica's view has read, `waitForSeq` waits until the view has read that far.
 */
export interface FreshReadsSource {
  appKnown(app: string): boolean;
  machineKnown(app: string, machineId: string): boolean;
  lastAppSeq(app: string): Promise<number>;
  lastMachineSeq(app: string, machineId: string): Promise<number>;
  waitForApps(seq: number, timeoutMs: number): Promise<void>;
  waitForMachines(seq: number, timeoutMs: number): Promise<void>;
}

/** How long a request waits for its replica to read an app or machine another replica just wrote. */
export const FRESH_READ_WAIT_MS = 2_000;

// App names and machine ids are plain tokens; anything else (a NATS wildcard, say) is never looked up.
const APP_PATH = /^\/v1\/apps\/([A-Za-z0-9_-]+)(?:\/machines\/([A-Za-z0-9_-]+))?(?:\/|$)/;

/**
 * Read-your-writes across gateway replicas. Each replica answers from its own fold of APPS and
 * MACHINES, so a client behind a load balancer that creates an app on one replica and uses it on
 * another could get a 404 while the second replica is a few milliseconds behind. On a miss only (an
 * app or machine this replica does not know), it asks JetStream for the aggregate's last sequence (a
 * direct get) and, when something is stored, waits up to FRESH_READ_WAIT_MS for its view to read it.
 * A name nobody created costs one direct get. A lookup NATS does not answer is a 503 (errors.ts maps
 * its error), and so is a fold still behind after the wait: the client retries, and is never told
 * 404 about what exists.
 */
export function freshReads(source: FreshReadsSource): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const m = APP_PATH.exec(c.req.path);
    if (m !== null) {
      const app = m[1] as string;
      const machineId = m[2];
      // The store holds what the fold has not read: wait for it. A store that does not answer, or a
      // fold that stays behind, is a 503 to retry, never a 404 for what exists.
      const caughtUp = async (
        seq: number,
        wait: (seq: number, ms: number) => Promise<void>,
        what: string,
      ) => {
        if (seq === 0) return;
        try {
          await wait(seq, FRESH_READ_WAIT_MS);
        } catch (err) {
          throw ApiError.of("unavailable", `this gateway has not read ${what} yet; try again`, {
            cause: err,
          });
        }
      };
      if (!source.appKnown(app)) {
        await caughtUp(await source.lastAppSeq(app), source.waitForApps, `app ${app}`);
      }
      if (machineId !== undefined && source.appKnown(app) && !source.machineKnown(app, machineId)) {
        await caughtUp(
          await source.lastMachineSeq(app, machineId),
          source.waitForMachines,
          `machine ${machineId}`,
        );
      }
    }
    return next();
  };
}

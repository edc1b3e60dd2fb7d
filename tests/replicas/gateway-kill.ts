// A gateway SIGKILLed under load (acceptance 3 of issue 18): the load of api-load.ts runs through a
// FailoverClient over every gateway; a third of the way in, one gateway is killed, and the load goes
// on on the others. Afterwards the victim is started again, for the checks that follow.
import { setTimeout as sleep } from "node:timers/promises";
import { type ApiLoadResult, startApiLoad } from "./api-load.js";
import { FailoverClient, type FailoverStats } from "./failover-client.js";
import type { ReplicatedPlatform } from "./harness.js";

export interface GatewayKillResult extends ApiLoadResult {
  stats: FailoverStats;
  /** Machines acknowledged before the kill, and the retries made after it (the kill's own mark). */
  beforeKill: number;
}

/** Runs the load on `app` for `loadMs` (default 12 s), killing gateway `victim` (default 1) at a third. */
export async function killGatewayUnderLoad(
  p: ReplicatedPlatform,
  opts: { app: string; loadMs?: number; workers?: number; victim?: number },
): Promise<GatewayKillResult> {
  const loadMs = opts.loadMs ?? 12_000;
  const index = opts.victim ?? 1;
  const victim = p.replicas.gateway[index];
  if (!victim) throw new RangeError(`no gateway ${index}: the platform has ${p.apiUrls.length}`);
  const client = new FailoverClient(p.apiUrls, p.token);
  const end = Date.now() + loadMs;
  const load = startApiLoad(client, {
    app: opts.app,
    workers: opts.workers ?? 6,
    until: () => Date.now() >= end,
  });
  await sleep(loadMs / 3);
  const beforeKill = load.live.acknowledged.size;
  await victim.kill("SIGKILL");
  const result = await load.done;
  process.stderr.write(
    `gateway kill: ${client.stats.requests} requests, ${result.acknowledged.size} machines acknowledged (${beforeKill} before gateway ${index} was killed), ` +
      `${client.stats.connectionRetries} retries after a refused or reset connection (${client.stats.mutationRetries} of them creates or destroys), ` +
      `${client.stats.busyRetries} after a busy answer, ${result.replays} creates answered by a replay, ${result.failures.length} failures\n`,
  );
  await victim.restart();
  return { ...result, stats: client.stats, beforeKill };
}

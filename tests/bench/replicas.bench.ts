// The replicated platform's figures (issue 18), on tests/replicas/harness.ts: a 3-node NATS cluster
// (R3 streams and buckets), 2 gateways, 2 placements, 2 schedulers and one of every other service
// (one monitor: none of the figures is the monitor's), every one a process.
// - one_gateway_rps / two_gateways_rps: the API load of tests/replicas/api-load.ts (WORKERS workers,
//   each a loop of create with an Idempotency-Key, get, list, destroy; machines with skip_launch, so
//   the control plane is measured, not machines starting) for ROUND_MS, sent to gateway 0 only, then
//   spread over both gateways (the same client, round-robin); 2xx answers per second. Rounds
//   alternate, ROUNDS of each; the best of each is reported.
// - scheduler_failover_s: the active scheduler (the lease holder, /health role "active") is SIGKILLed;
//   timed until the standby's /health says it is active: from then it runs the autoscaler's loop.
// - nats_node_loss_gap_s: the same API load (both gateways) runs; the NATS node leading the MACHINES
//   stream is SIGKILLed 5 s in, and the load runs 20 s more; the longest time between two accepted
//   writes (2xx creates and destroys) from the kill to the end of the load.
import { loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { startApiLoad } from "../replicas/api-load.js";
import { FailoverClient } from "../replicas/failover-client.js";
import { type ReplicatedPlatform, startReplicatedPlatform } from "../replicas/harness.js";
import { longestWriteGapS } from "../replicas/write-gap.js";
import { printTable, round } from "./stats.js";

const WORKERS = 8;
const ROUND_MS = 10_000;
const ROUNDS = 2;
const NODE_LOSS_BEFORE_MS = 5_000;
const NODE_LOSS_AFTER_MS = 20_000;
const APP = "bench-replicas";

/** 2xx answers per second of one round of the load over `gateways`; throws on any failed request. */
async function throughput(p: ReplicatedPlatform, gateways: string[], tag: string): Promise<number> {
  const client = new FailoverClient(gateways, p.token);
  const end = Date.now() + ROUND_MS;
  const r = await startApiLoad(client, { app: APP, workers: WORKERS, until: () => Date.now() >= end, tag })
    .done;
  if (r.failures.length > 0) throw new Error(`${r.failures.length} failed requests, e.g. ${r.failures[0]}`);
  return r.succeeded / (r.elapsedMs / 1000);
}

async function schedulerFailoverS(p: ReplicatedPlatform): Promise<number> {
  const active = await waitFor("an active scheduler", 30_000, () => p.activeScheduler());
  const victim = p.replicas.scheduler[active];
  if (!victim) throw new Error(`no scheduler ${active}`);
  const killedAt = Date.now();
  await victim.kill("SIGKILL");
  await waitFor("the standby scheduler to take over", 60_000, async () => {
    const now = await p.activeScheduler();
    return now !== undefined && now !== active ? now : undefined;
  });
  const seconds = (Date.now() - killedAt) / 1000;
  await victim.restart();
  return seconds;
}

async function natsNodeLossGapS(
  p: ReplicatedPlatform,
): Promise<{ gap: number; node: string; writes: number }> {
  const cluster = p.natsCluster;
  if (!cluster) throw new Error("the replicated platform has no NATS cluster");
  const nc = await p.connectNats();
  let leader: string;
  try {
    const info = await (await jetstreamManager(nc)).streams.info("MACHINES");
    leader = info.cluster?.leader ?? "hangar-1";
  } finally {
    await nc.close();
  }
  const index = Number(leader.replace(/^hangar-/, "")) - 1;
  const node = cluster.servers[index];
  if (!node) throw new Error(`MACHINES' leader ${leader} is not a node of the cluster`);
  const client = new FailoverClient(p.apiUrls, p.token);
  const end = Date.now() + NODE_LOSS_BEFORE_MS + NODE_LOSS_AFTER_MS;
  const load = startApiLoad(client, { app: APP, workers: WORKERS, until: () => Date.now() >= end, tag: "n" });
  await sleep(NODE_LOSS_BEFORE_MS);
  const killedAt = Date.now();
  await node.kill();
  const r = await load.done;
  if (r.failures.length > 0) throw new Error(`${r.failures.length} failed requests, e.g. ${r.failures[0]}`);
  const gap = longestWriteGapS(r.writeTimes, killedAt, end);
  await node.restart();
  return { gap, node: leader, writes: r.writeTimes.filter((t) => t >= killedAt).length };
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}

export async function run(): Promise<Record<string, number>> {
  const t0 = Date.now();
  // A host with room for every machine the load makes: a destroyed machine's room comes back with
  // placement's next reconcile (every 5 s), and the load makes more than 64 (the test platform's
  // host) in that time.
  const p = await startReplicatedPlatform({
    monitors: 1,
    env: { "host-agent": { HANGAR_HOST_AGENT_CPUS: "100000", HANGAR_HOST_AGENT_MEMORY_MB: "25600000" } },
  });
  try {
    console.log(
      `replicated platform up in ${round((Date.now() - t0) / 1000, 1)} s; load average ${loadavg()
        .map((l) => round(l, 1))
        .join(" ")}`,
    );
    await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
    const one: number[] = [];
    const two: number[] = [];
    // A warm-up round on both gateways first (JIT, catalogs, connections), not counted.
    await throughput(p, p.apiUrls, "warm");
    for (let i = 0; i < ROUNDS; i++) {
      one.push(await throughput(p, [p.apiUrls[0] as string], `one${i}-`));
      two.push(await throughput(p, p.apiUrls, `two${i}-`));
    }
    const failover = await schedulerFailoverS(p);
    const loss = await natsNodeLossGapS(p);
    const result = {
      one_gateway_rps: round(Math.max(...one), 1),
      two_gateways_rps: round(Math.max(...two), 1),
      scheduler_failover_s: round(failover, 2),
      nats_node_loss_gap_s: round(loss.gap, 2),
    };
    printTable([
      [
        "one_gateway_rps",
        result.one_gateway_rps,
        `rounds ${one.map((r) => round(r, 1)).join(", ")}: ${WORKERS} workers, create/get/list/destroy, ${ROUND_MS / 1000} s each`,
      ],
      [
        "two_gateways_rps",
        result.two_gateways_rps,
        `rounds ${two.map((r) => round(r, 1)).join(", ")}: the same load spread over both gateways`,
      ],
      [
        "scheduler_failover_s",
        result.scheduler_failover_s,
        "active scheduler SIGKILLed -> the standby's /health says active (target < 10)",
      ],
      [
        "nats_node_loss_gap_s",
        result.nats_node_loss_gap_s,
        `node ${loss.node} (MACHINES' leader) SIGKILLed under the load: longest pause in accepted writes, ${loss.writes} writes after the kill (target < 10)`,
      ],
      [
        "load average",
        loadavg()
          .map((l) => round(l, 1))
          .join(" "),
        "of this machine at the end (1, 5, 15 min)",
      ],
    ]);
    return result;
  } finally {
    await p.close();
  }
}

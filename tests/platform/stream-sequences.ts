// Every JetStream stream's last sequence, for tests that prove a refused call wrote nothing.
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { LEASES_BUCKET } from "../../libs/lease/src/mod.js";

/**
 * Streams written on a timer whatever the input: the leadership leases' bucket, renewed every ttl/3 by
 * their holders (the scheduler's and the postgres manager's).
 */
export const HEARTBEAT_STREAMS: ReadonlySet<string> = new Set([`KV_${LEASES_BUCKET}`]);

/** Every stream's last sequence, by stream name (event streams, KV and object buckets; heartbeat streams left out). */
export async function lastSequences(nc: NatsConnection): Promise<Record<string, number>> {
  const jsm = await jetstreamManager(nc);
  const out: Record<string, number> = {};
  for await (const info of jsm.streams.list()) {
    if (!HEARTBEAT_STREAMS.has(info.config.name)) out[info.config.name] = info.state.last_seq;
  }
  return out;
}

/**
 * The sequences once the platform is quiet: two readings a second apart agree (set-up's own writes,
 * such as a host's registration, have landed).
 */
export async function settledSequences(nc: NatsConnection): Promise<Record<string, number>> {
  let before = await lastSequences(nc);
  for (let i = 0; i < 30; i++) {
    await sleep(1000);
    const now = await lastSequences(nc);
    if (JSON.stringify(now) === JSON.stringify(before)) return now;
    before = now;
  }
  throw new Error(`the platform's streams kept changing: ${JSON.stringify(before)}`);
}

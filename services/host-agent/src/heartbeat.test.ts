import { totalmem } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { HostHeartbeats } from "./heartbeat.js";

const host = { hostId: "h1", region: "ams", cpus: 32, memoryMb: 4096, address: "10.0.0.1" };
const started: HostHeartbeats[] = [];

afterEach(() => {
  for (const h of started.splice(0)) h.stop();
});

function heartbeats(running: () => number, everyMs: number) {
  const sent: Array<{ subject: string; payload: Record<string, unknown> }> = [];
  const hb = new HostHeartbeats({
    host,
    machinesRunning: running,
    publish: (subject, payload) => sent.push({ subject, payload: JSON.parse(payload) }),
    everyMs,
  });
  started.push(hb);
  return { hb, sent };
}

describe("HostHeartbeats", () => {
  it("sends one at start on the host's subject, with what runs now, then keeps sending until stopped", async () => {
    let running = 2;
    const { hb, sent } = heartbeats(() => running, 20);
    hb.start();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.subject).toBe("hosts.heartbeat.h1");
    expect(sent[0]?.payload).toMatchObject({
      host_id: "h1",
      region: "ams",
      cpus: 32,
      memory_mb: 4096,
      address: "10.0.0.1",
      machines_running: 2,
    });
    running = 3;
    while (sent.length < 3) await sleep(10);
    expect(sent.at(-1)?.payload.machines_running).toBe(3);
    hb.stop();
    const count = sent.length;
    await sleep(60);
    expect(sent).toHaveLength(count);
  });

  it("says how loaded the host is: its real load average and free memory unless told otherwise", () => {
    const { hb } = heartbeats(() => 0, 60_000);
    const real = hb.beat();
    expect(real.load1).toBeGreaterThanOrEqual(0);
    expect(real.free_memory_mb).toBeGreaterThan(0);
    expect(real.free_memory_mb).toBeLessThanOrEqual(Math.ceil(totalmem() / 1024 / 1024));
    const given = new HostHeartbeats({
      host,
      machinesRunning: () => 0,
      publish: () => {},
      load: () => ({ load1: 1.5, freeMemoryMb: 512 }),
    }).beat();
    expect(given).toMatchObject({ load1: 1.5, free_memory_mb: 512 });
  });

  it("starts once however often it is told to", () => {
    const { hb, sent } = heartbeats(() => 0, 60_000);
    hb.start();
    hb.start();
    expect(sent).toHaveLength(1);
  });
});

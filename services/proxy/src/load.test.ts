import type { NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AppStats } from "./engine/mod.js";
import { LoadPublisher, SOON_MS } from "./load.js";

const app = (name: string, inFlight: number): AppStats => ({
  app: name,
  inFlight,
  queued: 0,
  received: inFlight,
  backends: [],
});

describe("LoadPublisher.soon", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("publishes, once within SOON_MS, the samples of the apps asked for and the heartbeat, not every active app's", () => {
    vi.useFakeTimers();
    const published: string[] = [];
    // Only the subjects matter here: what a round sends, not how (scaling.int runs it on NATS).
    const nc = { publish: (subject: string) => published.push(subject) } as unknown as NatsConnection;
    const apps = ["a", "b", "c"].map((name) => app(name, 1));
    const publisher = LoadPublisher.start({
      nc,
      proxyId: "p1",
      region: "local",
      stats: () => ({ inFlight: 3, queued: 0, machinesSeq: 7, apps }),
      intervalMs: 600_000,
    });
    try {
      publisher.tick(); // a regular round: every active app
      expect(published.sort()).toEqual(["load.a", "load.b", "load.c", "proxy.heartbeat.p1"]);
      published.length = 0;
      publisher.soon("a");
      publisher.soon("c");
      publisher.soon("a");
      expect(published).toEqual([]);
      vi.advanceTimersByTime(SOON_MS);
      expect(published.sort()).toEqual(["load.a", "load.c", "proxy.heartbeat.p1"]);
      published.length = 0;
      vi.advanceTimersByTime(SOON_MS * 10);
      expect(published).toEqual([]);
    } finally {
      publisher.stop();
    }
  });
});

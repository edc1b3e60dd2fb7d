import type { LoadSample, ProxyHeartbeat } from "@hangar/service";
import { describe, expect, it } from "vitest";
import { LoadBoard, parseLoadSample } from "./load.js";
import { ConcurrencyWindows } from "./windows.js";

const sample = (
  proxy: string,
  app: string,
  concurrency: number,
  extra: Partial<LoadSample> = {},
): LoadSample => ({
  proxy_id: proxy,
  region: "ams",
  app,
  ts: 0,
  machines_seq: 0,
  concurrency,
  queued: 0,
  machines: [],
  ...extra,
});

const heartbeat = (proxy: string, seq: number, apps: string[]): ProxyHeartbeat => ({
  proxy_id: proxy,
  region: "ams",
  ts: 0,
  machines_seq: seq,
  apps,
});

describe("load board", () => {
  it("sums the recent samples of live proxies; a stale sample or a silent proxy adds 0", () => {
    const board = new LoadBoard(3000);
    board.sample(
      sample("p1", "a", 30, {
        queued: 5,
        machines: [
          { machine_id: "m1", region: "ams", concurrency: 20 },
          { machine_id: "m2", region: "fra", concurrency: 5 },
        ],
      }),
      0,
    );
    board.sample(
      sample("p2", "a", 10, { machines: [{ machine_id: "m1", region: "ams", concurrency: 10 }] }),
      1000,
    );
    board.heartbeat(heartbeat("p3", 0, []), 1000);
    const at1 = board.appLoad("a", 1000);
    expect(at1.concurrency).toBe(40);
    expect(at1.proxies).toBe(3);
    expect(at1.machines).toEqual(
      new Map([
        ["m1", 30],
        ["m2", 5],
      ]),
    );
    // What no machine took yet (queued) is demand in the proxy's region.
    expect(at1.regions).toEqual(
      new Map([
        ["ams", 35],
        ["fra", 5],
      ]),
    );
    // p1 falls silent: at 3 s it is no longer live.
    board.heartbeat(heartbeat("p2", 0, ["a"]), 3500);
    const at35 = board.appLoad("a", 3500);
    expect(at35.concurrency).toBe(10);
    expect(at35.proxies).toBe(2);
    // p2 still beats but sends no sample for the app: its old sample adds nothing.
    board.heartbeat(heartbeat("p2", 0, ["a"]), 4500);
    expect(board.appLoad("a", 4500).concurrency).toBe(0);
  });

  it("calls a cordoned machine drained once every live proxy folded the cordon and has nothing on it", () => {
    const board = new LoadBoard(3000);
    board.heartbeat(heartbeat("p1", 9, ["a"]), 0);
    board.heartbeat(heartbeat("p2", 12, []), 0);
    expect(board.drainStatus("a", "m1", 10, 0)).toEqual({ drained: false, waitingFor: ["p1"] });
    board.heartbeat(heartbeat("p1", 10, ["a"]), 100);
    // p1 carries app a: it needs a sample taken after the cordon.
    expect(board.drainStatus("a", "m1", 10, 100).drained).toBe(false);
    board.sample(
      sample("p1", "a", 3, {
        machines_seq: 10,
        machines: [{ machine_id: "m1", region: "ams", concurrency: 3 }],
      }),
      200,
    );
    expect(board.drainStatus("a", "m1", 10, 200).drained).toBe(false);
    board.sample(
      sample("p1", "a", 3, {
        machines_seq: 11,
        machines: [{ machine_id: "m2", region: "ams", concurrency: 3 }],
      }),
      300,
    );
    expect(board.drainStatus("a", "m1", 10, 300)).toEqual({ drained: true, waitingFor: [] });
    // A proxy that died does not hold the drain.
    board.heartbeat(heartbeat("p3", 1, ["a"]), 300);
    expect(board.drainStatus("a", "m1", 10, 300).drained).toBe(false);
    expect(board.drainStatus("a", "m1", 10, 3300).waitingFor).toEqual([]);
  });

  it("ignores messages that are not load samples", () => {
    expect(parseLoadSample({ app: "a" })).toBeUndefined();
    expect(parseLoadSample("x")).toBeUndefined();
    expect(parseLoadSample({ proxy_id: "p", app: "a", concurrency: -1 })).toBeUndefined();
    expect(parseLoadSample({ proxy_id: "p", app: "a", concurrency: 2 })?.machines).toEqual([]);
  });
});

describe("concurrency windows", () => {
  it("takes the max over the panic window and the mean over the stable window (or the ticks so far)", () => {
    const w = new ConcurrencyWindows(2000, 4000);
    w.observe(0, 10);
    expect(w.stable(0)).toBe(10);
    w.observe(1000, 30);
    w.observe(2000, 0);
    expect(w.panic(2000)).toBe(30);
    expect(w.stable(2000)).toBeCloseTo(40 / 3);
    w.observe(3000, 0);
    expect(w.panic(3000)).toBe(0);
    w.observe(4000, 0);
    w.observe(5000, 0);
    // The stable window ending at 5 s holds 2..5 s.
    expect(w.stable(5000)).toBe(0);
  });
});

// The replica faults of the production shape, on one replicated platform (3-node NATS with R3 streams,
// 2 gateways, 2 placements, 2 schedulers, 2 monitors; tests/replicas/harness.ts), one after another:
// the active scheduler is killed mid scale-up, a NATS node is killed under API writes, and every
// service is killed and started again at once. After each, the event log is read back and checked
// (tests/replicas/invariants.ts): no lost or doubled machine, no host over capacity, no decision or
// action carried out twice. Durations are printed; the bounds on them are liveness bounds.
import { setTimeout as sleep } from "node:timers/promises";
import { EVENT_TYPES_HEADER } from "@hangar/eventstore";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiClient, scaledHelloConfig, viaProxy } from "../platform/harness.js";
import { HeldLoad } from "../platform/held-load.js";
import { type ReplicatedPlatform, startReplicatedPlatform } from "./harness.js";

let p: ReplicatedPlatform;
/** Every machine id an API create answered 200 for, across the file: none may ever be lost. */
const acknowledged = new Set<string>();
const SCALED = "scaled";
const WRITES = "writes";

beforeAll(async () => {
  const t0 = Date.now();
  p = await startReplicatedPlatform({
    env: {
      scheduler: {
        HANGAR_SCHEDULER_PANIC_WINDOW_S: "2",
        HANGAR_SCHEDULER_STABLE_WINDOW_S: "6",
        HANGAR_SCHEDULER_DRAIN_TIMEOUT_S: "10",
      },
    },
  });
  process.stderr.write(`replicated platform up in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  await p.api.ok("POST", "/apps", { app_name: SCALED, org_slug: "personal" });
  await p.api.ok("POST", "/apps", { app_name: WRITES, org_slug: "personal" });
}, 240_000);

afterAll(async () => {
  await p?.close();
});

interface Machine {
  id: string;
  state: string;
}

interface Scaling {
  decisions_total: number;
  decisions: { actions: { outcome: string }[] }[];
}

/** Polls `probe` every 200 ms until it is true; fails saying `what` after `timeoutMs` (a liveness bound). */
async function eventually(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(200);
  }
}

const machines = (app: string) => p.api.ok<Machine[]>("GET", `/apps/${app}/machines`);

/** Checks the log; `scaled`: this test made the scheduler decide and act, so the log must show it. */
async function expectInvariants(opts: { scaled?: boolean } = {}): Promise<void> {
  const report = await p.checkInvariants({ acknowledged });
  process.stderr.write(
    `invariants: ${report.machinesCreated} machines created, ${report.decisions} decisions, ${report.actionsFinished} actions finished, host peaks ${JSON.stringify(report.hostPeaks)}\n`,
  );
  expect(report.violations).toEqual([]);
  // An empty log keeps every invariant: these say the checks had something to look at.
  expect(acknowledged.size).toBeGreaterThan(0);
  expect(report.machinesCreated).toBeGreaterThanOrEqual(acknowledged.size);
  expect(Object.keys(report.hostPeaks).length).toBeGreaterThan(0);
  expect(Object.values(report.hostPeaks).some((h) => h.memoryMb > 0)).toBe(true);
  if (opts.scaled) {
    expect(report.decisions).toBeGreaterThan(0);
    expect(report.actionsFinished).toBeGreaterThan(0);
  }
}

describe("replica faults", () => {
  it("the standby scheduler takes over from a killed active one mid scale-up, carrying out no action twice", async () => {
    const first = await p.api.ok<Machine>("POST", `/apps/${SCALED}/machines`, {
      config: scaledHelloConfig({ soft: 5, min: 1, max: 6 }),
    });
    acknowledged.add(first.id);
    await eventually("the first machine started", 60_000, async () =>
      (await machines(SCALED)).some((m) => m.id === first.id && m.state === "started"),
    );
    const active = await p.activeScheduler();
    expect(active).toBeDefined();
    const standby = active === 0 ? 1 : 0;
    // The active scheduler is killed the moment its first decision for the app is appended (the
    // operator's subscription to ev.scale.<app> sees it), while its actions are being carried out.
    const nc = await p.connectNats();
    const decided = new Promise<void>((resolve) => {
      // A message of the app's SCALING log that holds a decision (its event types are in a header).
      const sub = nc.subscribe(`ev.scale.${SCALED}`, {
        callback: (_err, msg) => {
          if (!msg.headers?.get(EVENT_TYPES_HEADER).split(",").includes("ScaleDecided")) return;
          sub.unsubscribe();
          resolve();
        },
      });
    });
    await nc.flush();
    let killedAt = 0;
    const killer = decided.then(async () => {
      const at = Date.now();
      await p.replicas.scheduler[active as number]?.kill("SIGKILL");
      killedAt = at;
    });
    // 20 requests always in flight over a soft limit of 5: the app needs 4 machines.
    const load = new HeldLoad({ proxyPort: p.proxyPort, app: SCALED, clients: 20, holdMs: 1_000 });
    try {
      await eventually("a scaling decision, and the kill", 60_000, async () => killedAt > 0);
      await killer;
      // What the killed scheduler left: its decision's actions with no finish in the log.
      const { scaling } = await p.readLog();
      const actions = scaling.flatMap((e) =>
        e.event.type === "ScaleDecided" ? (e.event.data.actions ?? []) : [],
      );
      const finished = scaling.filter((e) => e.event.type === "ScaleActionFinished").length;
      const unfinished = actions.length - finished;
      process.stderr.write(
        `scheduler failover: killed the active scheduler as it recorded its decision; ${unfinished} of its actions unfinished after the kill\n`,
      );
      await eventually(
        "the standby scheduler to become active",
        10_000,
        async () => (await p.activeScheduler()) === standby,
      );
      const takeoverS = (Date.now() - killedAt) / 1000;
      process.stderr.write(
        `scheduler failover: the standby took over ${takeoverS.toFixed(2)} s after the SIGKILL\n`,
      );
      await eventually(
        "4 started machines",
        90_000,
        async () => (await machines(SCALED)).filter((m) => m.state === "started").length >= 4,
      );
    } finally {
      await load.stop();
      await nc.close();
    }
    // The killed one comes back and stands by.
    await p.replicas.scheduler[active as number]?.restart();
    expect(await p.activeScheduler()).toBe(standby);
    await eventually("every scale action finished", 30_000, async () => {
      const s = await p.api.ok<Scaling>("GET", `/apps/${SCALED}/scaling?limit=50`);
      return s.decisions.every((d) => d.actions.every((a) => a.outcome !== ""));
    });
    for (const m of await machines(SCALED)) acknowledged.add(m.id);
    await expectInvariants({ scaled: true });
  }, 240_000);

  it("keeps accepting API writes when the MACHINES stream leader's NATS node is killed, and loses nothing acknowledged", async () => {
    const nc = await p.connectNats();
    let victim: number;
    try {
      const info = await (await jetstreamManager(nc)).streams.info("MACHINES");
      expect(info.config.num_replicas).toBe(3);
      const leader = info.cluster?.leader ?? "";
      // startNatsCluster names its nodes hangar-1..n.
      victim = Number(/^hangar-(\d+)$/.exec(leader)?.[1]) - 1;
      expect(victim).toBeGreaterThanOrEqual(0);
    } finally {
      await nc.close();
    }
    const node = p.natsCluster?.servers[victim];
    if (!node) throw new Error("the platform has no NATS cluster");

    // Two writers, one per gateway, each creating a machine (not launched: no process) after the last answer.
    const accepted: number[] = [];
    const failures: string[] = [];
    let writing = true;
    const writer = async (i: number) => {
      const api = p.apis[i % p.apis.length];
      if (!api) return;
      for (let n = 0; writing; n++) {
        const res = await api
          .call<{ id?: string; error?: string }>("POST", `/apps/${WRITES}/machines`, {
            config: { ...scaledHelloConfig({ soft: 5 }), env: { W: `${i}-${n}` } },
            skip_launch: true,
          })
          .catch((err: Error) => ({ status: 0, body: { id: undefined, error: err.message } }));
        if (res.status === 200 && res.body.id) {
          acknowledged.add(res.body.id);
          accepted.push(Date.now());
        } else failures.push(`${res.status} ${res.body.error ?? ""}`.slice(0, 160));
        await sleep(100);
      }
    };
    const writers = [0, 1].map(writer);
    await sleep(2_000);
    const killedAt = Date.now();
    await node.kill("SIGKILL");
    // The cluster elects new leaders for the streams the node led (nats-server's Raft election timeout
    // is several seconds); writes go on being sent until 10 more were accepted, then 2 s more.
    try {
      await eventually(
        "10 writes accepted after the node was killed",
        90_000,
        async () => accepted.filter((t) => t > killedAt).length >= 10,
      );
      await sleep(2_000);
    } finally {
      writing = false;
      await Promise.all(writers);
    }
    const stoppedAt = Math.max(...accepted);
    await node.restart();

    const during = accepted.filter((t) => t > killedAt);
    let gap = 0;
    let last = killedAt;
    for (const t of during) {
      gap = Math.max(gap, t - last);
      last = t;
    }
    gap = Math.max(gap, stoppedAt - last);
    process.stderr.write(
      `nats node loss: ${accepted.length} writes accepted (${during.length} after the kill), ${failures.length} failed ${JSON.stringify(failures.slice(0, 5))}; longest gap in accepted writes after the kill ${(gap / 1000).toFixed(2)} s\n`,
    );
    // The platform kept serving on two nodes: writes were accepted after the node died, up to the end.
    expect(during.length).toBeGreaterThanOrEqual(10);
    // Nothing acknowledged is lost, read from the streams with the node back; every one is listed.
    await expectInvariants();
    // The gateways' folds follow the streams, and one whose consumer went to the restarted node reads
    // the newest messages once that node has caught up: every acknowledged machine is listed by then.
    const t0 = Date.now();
    await eventually("every acknowledged machine listed by each gateway", 60_000, async () => {
      for (const api of p.apis) {
        const listed = new Set(
          [
            ...(await api.ok<Machine[]>("GET", `/apps/${WRITES}/machines`)),
            ...(await api.ok<Machine[]>("GET", `/apps/${SCALED}/machines`)),
          ].map((m) => m.id),
        );
        if ([...acknowledged].some((id) => !listed.has(id))) return false;
      }
      return true;
    });
    process.stderr.write(
      `nats node loss: every acknowledged machine listed by both gateways ${Date.now() - t0} ms after the check began\n`,
    );
  }, 180_000);

  it("rebuilds its state after every service is killed and started again at once, doubling nothing", async () => {
    // Before: what both gateways list alike (their folds follow the streams, each at its own pace).
    const listing = async (api: ApiClient) => {
      const out = new Map<string, string>();
      for (const app of [SCALED, WRITES])
        for (const m of await api.ok<Machine[]>("GET", `/apps/${app}/machines`)) out.set(m.id, m.state);
      return out;
    };
    const same = (a: Map<string, string>, b: Map<string, string>) =>
      a.size === b.size && [...a].every(([id, state]) => b.get(id) === state);
    let before = new Map<string, string>();
    await eventually("both gateways listing the same machines", 60_000, async () => {
      const [a, b] = await Promise.all(p.apis.map(listing));
      before = a ?? new Map();
      return a !== undefined && b !== undefined && same(a, b);
    });
    const t0 = Date.now();
    await p.restartAll();
    process.stderr.write(
      `restart everything: every replica healthy again after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    await eventually("every machine listed as before, in the same state, by each gateway", 60_000, async () =>
      (await Promise.all(p.apis.map(listing))).every((now) => same(now, before)),
    );
    // One scheduler acts again, and the scaled app is served through the proxy.
    await eventually("an active scheduler", 15_000, async () => (await p.activeScheduler()) !== undefined);
    await eventually(
      "the scaled app served through the proxy",
      30_000,
      async () => (await viaProxy(p, SCALED)).status === 200,
    );
    const started = [...before.values()].filter((s) => s === "started").length;
    await eventually("the host agent running every started machine, once", 30_000, async () => {
      const agent = (await (await fetch(p.replicas["host-agent"][0]?.healthUrl ?? "")).json()) as {
        machines_running: number;
      };
      return agent.machines_running === started;
    });
    await expectInvariants();
  }, 240_000);
});

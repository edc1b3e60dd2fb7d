// The fault test: 50 machine creations spread over a few seconds while the gateway, placement, the
// host agent, the proxy and the monitor are each killed with SIGKILL at a random moment and started
// again. Each creation carries an Idempotency-Key and is sent again until it is answered, so every one
// lands, once. Afterwards every machine the API acknowledged exists, in one state that the API, the proxy
// and the host agent agree on; none is lost, none runs twice, and no host is over capacity.
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { hostDecider, hostsStream } from "@hangar/domain";
import { CommandHandler, EventStore } from "@hangar/eventstore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceName } from "../../scripts/platform.js";
import { helloConfig, startTestPlatform, type TestPlatform } from "./harness.js";

let p: TestPlatform;
const APP = "faulty";
const CREATIONS = 50;
/** How often one creation is sent before the test gives up on it: about 30 s of a platform down. */
const MAX_ATTEMPTS = 300;

beforeAll(async () => {
  p = await startTestPlatform();
  await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
}, 120_000);

afterAll(async () => {
  await p?.close();
});

/** Whether fetch failed because nothing listened (ECONNREFUSED): the request never reached a server. */
function connectionRefused(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } }).cause;
  return cause?.code === "ECONNREFUSED";
}

/** Live `node` processes per machine id, found by the FLY_MACHINE_ID in their environment. */
function machineProcesses(): Map<string, number[]> {
  const found = new Map<string, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() !== "node") continue;
      const env = readFileSync(`/proc/${entry}/environ`, "utf8").split("\0");
      const id = env.find((v) => v.startsWith("FLY_MACHINE_ID="))?.slice("FLY_MACHINE_ID=".length);
      const app = env.find((v) => v.startsWith("FLY_APP_NAME="))?.slice("FLY_APP_NAME=".length);
      if (!id || app !== APP) continue;
      found.set(id, [...(found.get(id) ?? []), Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

describe("kill -9 of every service during 50 concurrent creations", () => {
  it("loses no acknowledged machine, runs none twice, and overbooks no host", async () => {
    const acknowledged = new Set<string>();
    let refused = 0;
    let retried = 0;
    // Why creations were refused (none should be), printed with the counts.
    const reasons = new Map<string, number>();
    const refuse = (why: string) => {
      refused++;
      reasons.set(why, (reasons.get(why) ?? 0) + 1);
    };
    const creations = Array.from({ length: CREATIONS }, async (_, i) => {
      // Spread over about 6 s so that every kill lands in the middle of creations.
      await sleep(Math.floor((i / CREATIONS) * 6_000 + Math.random() * 200));
      // Each creation carries an Idempotency-Key, as a careful Fly client's would, so the client sends
      // it again whatever became of an attempt: a refused connection (nothing sent), a 503 that says
      // to try again (the platform's messaging timed out while a service was down), placement's
      // insufficient_capacity while the only host's agent is being restarted (its heartbeat is older
      // than placement's 5 s), a 409 while a killed gateway's claim on the key is not yet taken over,
      // and a request cut off in flight (the gateway died with it). The key makes a repeat of a
      // creation that was recorded answer with that machine, never make a second one: the checks
      // below ("runs none twice") hold the platform to it. Without the key, cut-off requests could
      // not be sent again, and how many creations landed depended on how fast the services came
      // back on a busy machine.
      const key = `faults-${process.pid}-${i}`;
      for (let attempt = 1; ; attempt++) {
        const again = async (why: string) => {
          if (attempt >= MAX_ATTEMPTS) {
            refuse(`gave up after ${attempt} attempts: ${why}`.slice(0, 120));
            return false;
          }
          retried++;
          await sleep(100);
          return true;
        };
        try {
          const res = await p.api.call<{ id?: string; error?: string; status?: string }>(
            "POST",
            `/apps/${APP}/machines`,
            { config: helloConfig({ env: { N: String(i) } }) },
            { headers: { "idempotency-key": key } },
          );
          if (res.status === 200 && res.body.id) acknowledged.add(res.body.id);
          else if (res.status === 503 || res.status === 409 || res.body.status === "insufficient_capacity") {
            if (await again(`${res.status} ${res.body.error ?? ""}`)) continue;
          } else refuse(`${res.status} ${res.body.error ?? ""}`.slice(0, 120));
        } catch (err) {
          const why = connectionRefused(err) ? "connection refused" : `no answer: ${(err as Error).message}`;
          if (await again(why)) continue;
        }
        break;
      }
    });
    const victims: ServiceName[] = ["gateway", "placement", "host-agent", "proxy", "monitor"];
    const killer = (async () => {
      for (const name of victims.sort(() => Math.random() - 0.5)) {
        await sleep(300 + Math.random() * 900);
        await p.services[name].kill("SIGKILL");
        await sleep(Math.random() * 300);
        await p.services[name].restart();
      }
    })();
    await Promise.all([...creations, killer]);
    process.stderr.write(
      `faults: ${acknowledged.size} creations acknowledged after ${retried} repeated attempts, ${refused} refused: ${JSON.stringify(Object.fromEntries(reasons))}\n`,
    );
    // Every creation lands, once: the key makes sending it again safe whatever the kills did.
    expect(acknowledged.size).toBe(CREATIONS);

    // Converge: every acknowledged machine reaches started (those placed while the agent was down
    // start when it is back).
    for (const id of acknowledged) {
      const res = await p.api.call("GET", `/apps/${APP}/machines/${id}/wait?state=started&timeout=60`);
      expect(res.status, `${id}: ${JSON.stringify(res.body)}`).toBe(200);
    }

    // The API: every acknowledged machine, each in exactly one state: started.
    const listed = await p.api.ok<Array<{ id: string; state: string }>>("GET", `/apps/${APP}/machines`);
    const byId = new Map(listed.map((m) => [m.id, m]));
    expect(listed.length).toBe(byId.size);
    for (const id of acknowledged) expect(byId.get(id)?.state, id).toBe("started");
    // A creation cut off after its event was stored exists too; it must be consistent like the rest.
    const startedIds = listed
      .filter((m) => m.state === "started")
      .map((m) => m.id)
      .sort();

    // The host agent: one process per started machine, none for anything else. "started" is recorded
    // once the sandbox runs; its app's own process (node, FLY_MACHINE_ID in its environment) comes a
    // moment later, out of the wrapper's exec: looked for until the set is as expected, or 15 s.
    const expected = JSON.stringify(startedIds.map((id) => [id, 1]));
    const seen = () => {
      const found = machineProcesses();
      return JSON.stringify([...found.keys()].sort().map((id) => [id, found.get(id)?.length ?? 0]));
    };
    for (const deadline = Date.now() + 15_000; seen() !== expected && Date.now() < deadline; )
      await sleep(250);
    const procs = machineProcesses();
    for (const id of startedIds) expect(procs.get(id)?.length ?? 0, `processes of ${id}`).toBe(1);
    expect([...procs.keys()].sort()).toEqual(startedIds);
    const agent = (await (await fetch(p.services["host-agent"].healthUrl)).json()) as {
      machines_running: number;
    };
    expect(agent.machines_running).toBe(startedIds.length);

    // The proxy: routes exactly the started machines (its table follows the stream; give it a moment).
    let routed: string[] = [];
    for (let i = 0; i < 50; i++) {
      const health = (await (await fetch(p.services.proxy.healthUrl)).json()) as {
        routes: Record<string, string[]>;
      };
      routed = health.routes[APP] ?? [];
      if (routed.length === startedIds.length) break;
      await sleep(100);
    }
    expect(routed).toEqual(startedIds);

    // No host over capacity, and every started machine holds its room.
    const nc = await p.connectNats();
    try {
      const hosts = new CommandHandler(await EventStore.connect(nc), hostsStream, hostDecider, {
        cacheSize: 0,
      });
      const { state } = await hosts.handle(
        p.hostId,
        { type: "ReleaseMachine", machineId: "probe", reason: "probe" },
        {
          commandId: `probe-${Date.now()}`,
        },
      );
      if (state.status === "absent") throw new Error("the host never registered");
      expect(state.usedMemoryMb).toBeLessThanOrEqual(state.memoryMb);
      expect(state.usedCpus).toBeLessThanOrEqual(state.cpus);
      for (const id of startedIds) expect(state.reservations[id], `reservation of ${id}`).toBeDefined();
    } finally {
      await nc.close();
    }

    // The monitor, restarted mid-way, counts them all from the stream. It follows the stream on its own,
    // like the proxy, so under load it may fold the last starts a moment after the API did.
    const pattern = new RegExp(`hangar_machines\\{[^}]*app="${APP}"[^}]*state="started"[^}]*\\} (\\d+)`);
    let counted = Number.NaN;
    for (let i = 0; i < 50 && counted !== startedIds.length; i++) {
      if (i > 0) await sleep(100);
      counted = Number(pattern.exec(await (await fetch(`${p.monitorUrl}/metrics`)).text())?.[1]);
    }
    expect(counted).toBe(startedIds.length);
  });
});

// Acceptance 3 of issue 18, a gateway killed under load (tests/replicas/gateway-kill.ts), on the
// replicated platform: every request ends in a 2xx for the retrying client, and the event log holds
// exactly the machines the API acknowledged, each created once (tests/replicas/invariants.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killGatewayUnderLoad } from "./gateway-kill.js";
import { type ReplicatedPlatform, startReplicatedPlatform } from "./harness.js";

const APP = "kill-load";
let p: ReplicatedPlatform;

beforeAll(async () => {
  // Room for every machine the load makes: a destroyed machine's room comes back with placement's
  // next reconcile (every 5 s), and a fast machine makes more than the test host's 64 in that time.
  p = await startReplicatedPlatform({
    schedulers: 1,
    monitors: 1,
    env: { "host-agent": { HANGAR_HOST_AGENT_CPUS: "100000", HANGAR_HOST_AGENT_MEMORY_MB: "25600000" } },
  });
  await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
}, 240_000);

afterAll(async () => {
  await p?.close();
});

describe("a gateway killed under load", () => {
  it("the retrying client sees no failed request, and no machine is lost or doubled", async () => {
    const r = await killGatewayUnderLoad(p, { app: APP });
    expect(r.failures).toEqual([]);
    // The kill came under load, the load went on after it, and the client did meet the dead gateway.
    expect(r.beforeKill).toBeGreaterThan(0);
    expect(r.acknowledged.size).toBeGreaterThan(r.beforeKill);
    expect(r.stats.connectionRetries).toBeGreaterThan(0);
    const report = await p.checkInvariants({ acknowledged: r.acknowledged });
    expect(report.violations).toEqual([]);
    // No create made a machine the client was not answered with (a retry that acted twice).
    const log = await p.readLog();
    const created = log.machines
      .filter((e) => e.event.type === "MachineCreated" && e.aggregateId.startsWith(`${APP}.`))
      .map((e) => e.aggregateId.slice(APP.length + 1));
    expect(new Set(created)).toEqual(r.acknowledged);
    expect(created).toHaveLength(r.acknowledged.size);
  }, 180_000);
});

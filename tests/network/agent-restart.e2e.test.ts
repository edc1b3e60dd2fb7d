// Issue 12, acceptance 4: kill -9 the host agent of a machine's host and start it again. The
// machine's addresses and routes, the other host's route to it and the DNS answers are the same
// afterwards, and a connection another host's machine holds to it across hosts never breaks.
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import {
  createMachine,
  ECHO_PORT,
  inside,
  type MachineNetwork,
  probe,
  pushNetworkImage,
  SERVE,
} from "./machines.js";

let p: TestPlatform;
/** On h1, whose agent is killed. */
let server: MachineNetwork;
/** On h2, holding a connection to the server. */
let holder: MachineNetwork;

beforeAll(async () => {
  p = await startTestPlatform({ hosts: 2 });
  await p.startHostAgent(1, { HANGAR_REGION: "ams" });
  const image = await pushNetworkImage(p);
  await p.api.ok("POST", "/orgs", { slug: "acme" });
  for (const app of ["srv", "cli"]) await p.api.ok("POST", "/apps", { app_name: app, org_slug: "acme" });
  server = await createMachine(p, "srv", { image, cmd: SERVE });
  holder = await createMachine(p, "cli", {
    image,
    region: "ams",
    cmd: ["node", "/app/holder.mjs", server.private_ip, String(ECHO_PORT)],
  });
}, 240_000);

afterAll(async () => {
  await p?.close();
}, 120_000);

interface Held {
  connected: boolean;
  sent: number;
  echoes: number;
  closed: boolean;
  error: string;
}

async function held(): Promise<Held> {
  return JSON.parse(await inside(p, "cli", holder.id, ["cat", "/tmp/holder.json"])) as Held;
}

function lines(text: string, containing: string): string[] {
  return text.split("\n").filter((line) => line.includes(containing));
}

/** Everything that must survive the agent: the server machine's network as the kernel and the resolver see it. */
async function snapshot() {
  const [h1, h2] = p.topology.hosts;
  if (!h1 || !h2) throw new Error("two hosts expected");
  const inHost = async (ns: string, argv: string[]) => (await p.topology.exec(ns, argv)).stdout;
  const machineNs = `hangar-${server.id}`;
  const ip = (...args: string[]) => execFileSync("ip", ["-n", machineNs, ...args], { encoding: "utf8" });
  const machine = await p.api.ok<MachineNetwork>("GET", `/apps/srv/machines/${server.id}`);
  const dns = await probe(p, "srv", server.id, {
    resolve: [
      { name: "srv.internal", type: "AAAA" },
      { name: "cli.internal", type: "AAAA" },
      { name: `${server.id}.vm.srv.internal`, type: "AAAA" },
      { name: "_apps.internal", type: "TXT" },
    ],
  });
  return {
    privateIp: machine.private_ip,
    machineAddresses: lines(ip("addr", "show"), "inet"),
    machineRoutes: [ip("-4", "route", "show"), ip("-6", "route", "show")],
    hostRoutes: lines(await inHost(h1.netns, ["ip", "-6", "route", "show"]), server.private_ip),
    remoteRoutes: lines(await inHost(h2.netns, ["ip", "-6", "route", "show"]), server.private_ip),
    dns: dns.resolve,
  };
}

describe("a host agent killed with kill -9 and started again", () => {
  it("leaves its machines' addresses, routes and DNS answers as they were, and a connection across hosts open", async () => {
    const before = await snapshot();
    expect(before.remoteRoutes).toEqual([expect.stringContaining(`via ${p.topology.hosts[0]?.underlayIp}`)]);
    expect(before.dns.map((r) => r.records)).toEqual([
      [server.private_ip],
      [holder.private_ip],
      [server.private_ip],
      ["cli,srv"],
    ]);
    let heldBefore = await held();
    // The holder connects a moment after its machine started.
    for (let i = 0; i < 100 && heldBefore.echoes === 0 && !heldBefore.closed; i++) {
      await sleep(100);
      heldBefore = await held();
    }
    expect(heldBefore).toMatchObject({ connected: true, closed: false, error: "" });
    expect(heldBefore.echoes).toBeGreaterThan(0);

    const agent = p.services["host-agent"];
    await agent.kill("SIGKILL");
    // The machines and their network run on without the agent for a while.
    await sleep(1000);
    await agent.restart();

    // The restarted agent's resolver answers once it has caught up with the streams.
    let after = await snapshot();
    for (let i = 0; i < 50 && JSON.stringify(after.dns) !== JSON.stringify(before.dns); i++) {
      await sleep(100);
      after = await snapshot();
    }
    expect(after).toEqual(before);

    await sleep(500);
    const heldAfter = await held();
    expect(heldAfter).toMatchObject({ connected: true, closed: false, error: "" });
    expect(heldAfter.echoes).toBeGreaterThan(heldBefore.echoes + 10);
    // Every line sent came back, but the ones in flight.
    expect(heldAfter.sent - heldAfter.echoes).toBeLessThanOrEqual(2);
  });
});

// Issue 12, acceptance 2: from inside a machine, no control-plane port of its host answers. The test
// lists every listening TCP socket of the host's namespace and of the root namespace (where NATS,
// the gateway, the proxy, every ops server and the test run's Postgres listen) and tries each from
// the machine, a wildcard or loopback bind at every address the machine could name (its host end,
// the host's underlay and uplink, the root namespace's addresses); only the resolver at
// [fdaa::3]:53 answers. The internet namespace's server is reachable (egress through the host's NAT).
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { createMachine, type MachineNetwork, probe, pushNetworkImage, SERVE } from "./machines.js";

const RESOLVER = { host: "fdaa::3", port: 53 };

let p: TestPlatform;
let m: MachineNetwork;

beforeAll(async () => {
  p = await startTestPlatform();
  await p.api.ok("POST", "/apps", { app_name: "probe", org_slug: "personal" });
  m = await createMachine(p, "probe", { image: await pushNetworkImage(p), cmd: SERVE });
}, 180_000);

afterAll(async () => {
  await p?.close();
}, 120_000);

/** Runs a command in namespace `ns` (undefined: the root namespace, the test's own). */
async function inNs(ns: string | undefined, argv: string[]): Promise<string> {
  if (ns === undefined) return execFileSync(argv[0] as string, argv.slice(1), { encoding: "utf8" });
  const result = await p.topology.exec(ns, argv);
  if (result.code !== 0) throw new Error(`${argv.join(" ")} in ${ns}: ${result.stderr}`);
  return result.stdout;
}

/** Every address of namespace `ns` but loopback ones (a machine's loopback is its own). */
async function addressesOf(ns: string | undefined): Promise<string[]> {
  const out = await inNs(ns, ["ip", "-o", "addr", "show"]);
  return [...out.matchAll(/ inet6? ([0-9a-f.:]+)\//g)]
    .map((match) => match[1] as string)
    .filter((ip) => !ip.startsWith("127.") && ip !== "::1" && !ip.startsWith("fe80:"));
}

/** The listening TCP sockets of namespace `ns`: address (as bound, "*" for a wildcard) and port. */
async function listenersOf(ns: string | undefined): Promise<Array<{ address: string; port: number }>> {
  const out = await inNs(ns, ["ss", "-ltnH"]);
  return out
    .trim()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const local = line.trim().split(/\s+/)[3] ?? "";
      const cut = local.lastIndexOf(":");
      const bound = local
        .slice(0, cut)
        .replace(/^\[|\]$/g, "")
        .replace(/%.*$/, "")
        .replace(/^::ffff:/, "");
      const wildcard = bound === "*" || bound === "0.0.0.0" || bound === "::";
      return { address: wildcard ? "*" : bound, port: Number(local.slice(cut + 1)) };
    });
}

/** The machine's default gateways: its veth's host end, IPv4 and IPv6 (link-local, so scoped to eth0). */
async function hostEnds(): Promise<string[]> {
  const gateway = (family: string) => {
    const out = execFileSync("ip", ["-n", `hangar-${m.id}`, family, "route", "show", "default"], {
      encoding: "utf8",
    });
    const via = /via (\S+)/.exec(out)?.[1];
    return via === undefined ? [] : [via.startsWith("fe80:") ? `${via}%eth0` : via];
  };
  return [...gateway("-4"), ...gateway("-6")];
}

describe("inside a machine", () => {
  it("reaches no listening socket of its host's namespace or the root namespace, only the resolver", async () => {
    const hostNs = p.topology.hosts[0]?.netns;
    const reachable = [
      ...(await hostEnds()),
      ...(await addressesOf(hostNs)),
      ...(await addressesOf(undefined)),
    ];
    const targets = new Map<string, { host: string; port: number }>();
    for (const ns of [hostNs, undefined]) {
      for (const { address, port } of await listenersOf(ns)) {
        // The machine's loopback is its own: a loopback bind is tried at every address the machine
        // can name, as a wildcard is (it must not leak there either).
        const loopback = address.startsWith("127.") || address === "::1";
        for (const host of address === "*" || loopback ? reachable : [address]) {
          if (host === RESOLVER.host && port === RESOLVER.port) continue;
          targets.set(`[${host}]:${port}`, { host, port });
        }
      }
    }
    // Not a vacuous list: the control plane's public sockets are in it.
    const ports = new Set([...targets.values()].map((t) => t.port));
    for (const url of [p.apiUrl, p.services.proxy.healthUrl, p.services["host-agent"].healthUrl]) {
      expect(ports, url).toContain(Number(new URL(url).port));
    }
    expect(ports).toContain(p.proxyPort);
    expect(ports).toContain(Number(new URL(p.nats.url).port));

    const seen = await probe(p, "probe", m.id, { timeoutMs: 1500, connect: [...targets.values()] });
    process.stdout.write(`tried ${seen.connect.length} listening sockets from inside the machine\n`);
    expect(seen.connect.length).toBe(targets.size);
    expect(seen.connect.filter((c) => c.connected)).toEqual([]);
  });

  it("reaches the resolver at [fdaa::3]:53 over TCP and UDP", async () => {
    const seen = await probe(p, "probe", m.id, {
      connect: [RESOLVER],
      resolve: [{ name: "probe.internal", type: "AAAA" }],
    });
    expect(seen.connect).toEqual([{ ...RESOLVER, connected: true }]);
    expect(seen.resolve).toEqual([{ name: "probe.internal", type: "AAAA", records: [m.private_ip] }]);
  });

  it("reaches the internet namespace's server through the host's NAT", async () => {
    const url = `http://${p.topology.internet.ip}:${p.topology.internet.port}/`;
    const seen = await probe(p, "probe", m.id, { fetch: [url] });
    expect(seen.fetch).toEqual([{ url, status: 200, body: "internet\n" }]);
  });
});

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { promisify } from "node:util";
import { createLogger } from "@hangar/telemetry";
import { createNetworkTopology, type NetworkTopology, type TopologyHost } from "@hangar/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  claimNetnsAddress,
  HOST_END_V6,
  hostEnd,
  IP,
  netnsName,
  releaseNetnsAddress,
} from "../src/driver/netns.js";
import { HostNetwork, type MachineLink, RESOLVER_ADDRESS } from "../src/network/host-network.js";
import { orgNetwork, sixpnSpec } from "../src/network/sixpn.js";

/**
 * The host network for real: two host namespaces of a test topology, a host agent's HostNetwork in
 * each, machines as bare namespaces running small node programs (as root in their namespace: more
 * than a sandboxed machine may do, which makes the refusals stronger).
 */

const execFileAsync = promisify(execFile);
const logger = createLogger("host-network-test", { level: "silent" });
const canRun = process.getuid?.() === 0 && existsSync(IP) && existsSync("/usr/sbin/nft");
const tag = `${process.pid}`;
const orgA = orgNetwork(`orga${tag}`, "0000a001");
const orgB = orgNetwork(`orgb${tag}`, "0000b001");
const ECHO_PORT = 7311;
const DNS_PORT = 53;
const UDP_PORT = 7312;

let topology: NetworkTopology;
let h1: TopologyHost;
let h2: TopologyHost;
const networks = new Map<string, HostNetwork>();
const machines: Array<MachineLink & { host: TopologyHost }> = [];
const children: ChildProcess[] = [];
let rootServer: Server | undefined;

function hostNetwork(host: TopologyHost): Promise<HostNetwork> {
  return HostNetwork.open({
    netns: host.netns,
    hostId: `hn-${host.name}-${tag}`,
    machineCidr: host.machineCidr,
    egressDeny: [],
    controlSources: [`${host.rootIp}/32`],
    logger,
  });
}

function network(host: TopologyHost): HostNetwork {
  const found = networks.get(host.name);
  if (!found) throw new Error(`no host network for ${host.name}`);
  return found;
}

/** A machine of `org` (or without 6PN) on `host`: its /30 claimed like an agent's, then ensured. */
async function addMachine(name: string, host: TopologyHost, org?: typeof orgA): Promise<MachineLink> {
  const machineId = `${name}${tag}`;
  const ipv4 = await claimNetnsAddress(machineId, new Set(), undefined, {
    cidr: host.machineCidr,
    hostNs: host.netns,
  });
  if (!ipv4) throw new Error("no free machine address");
  const link: MachineLink = { machineId, ipv4, ...(org ? { sixpn: sixpnSpec(org, machineId) } : {}) };
  machines.push({ ...link, host });
  await network(host).ensureMachine(link);
  return link;
}

function v6(link: MachineLink): string {
  if (!link.sixpn) throw new Error(`${link.machineId} has no 6PN address`);
  return link.sixpn.address;
}

/** Starts a long-running node program in namespace `ns`; resolves once it prints "ready". */
async function startIn(ns: string, program: string, args: string[] = []): Promise<ChildProcess> {
  const child = spawn(IP, ["netns", "exec", ns, process.execPath, "-e", program, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "ready" from ${ns}: ${output}`)), 10_000);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      (child as ChildProcess & { printed?: string }).printed = output;
      if (output.includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${ns}'s program exited (${code}): ${output}`));
    });
  });
  return child;
}

/** A TCP server on every address of its namespace: answers each connection with the peer's address, then echoes. */
const ECHO_SERVER = `
require("node:net").createServer((s) => { s.write(s.remoteAddress.replace(/^::ffff:/, "") + "\\n"); s.pipe(s); })
  .listen(Number(process.argv[1]), "::", () => console.log("ready"));`;

/**
 * Tries TCP connections from inside a namespace, all at once: prints, per target, the first line the
 * server sent, or "refused: <code>" when no connection was made within the timeout.
 */
const CONNECT = `
const net = require("node:net");
const targets = JSON.parse(process.argv[1]);
Promise.all(targets.map((t) => new Promise((resolve) => {
  const s = net.connect({ host: t.host, port: t.port, ...(t.localAddress ? { localAddress: t.localAddress } : {}) });
  const done = (v) => { s.destroy(); resolve(v); };
  s.setTimeout(1500, () => done("refused: timeout"));
  s.once("error", (e) => done("refused: " + e.code));
  let data = "";
  s.on("data", (c) => { data += c; if (data.includes("\\n")) done(data.split("\\n")[0]); });
  s.once("connect", () => { if (t.silent) done("connected"); });
}))).then((r) => console.log(JSON.stringify(r)));`;

interface Target {
  host: string;
  port: number;
  localAddress?: string;
  /** The server says nothing first: a connection is the answer. */
  silent?: boolean;
}

async function connectFrom(ns: string, targets: Target[]): Promise<string[]> {
  const result = await topology.exec(ns, [process.execPath, "-e", CONNECT, JSON.stringify(targets)], {
    timeoutMs: 15_000,
  });
  if (result.code !== 0) throw new Error(`connect from ${ns} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as string[];
}

/** Sends one UDP datagram from `ns` and prints the reply, or "no reply". */
const UDP_ASK = `
const s = require("node:dgram").createSocket("udp6");
const timer = setTimeout(() => { console.log("no reply"); process.exit(0); }, 1500);
s.on("message", (m) => { clearTimeout(timer); console.log(String(m)); s.close(); });
s.send("ping", Number(process.argv[2]), process.argv[1]);`;

/** Prints "<source> <payload>" for every UDP datagram it gets (on every address of its namespace). */
const UDP_RECORDER = `
const d = require("node:dgram").createSocket({ type: "udp6", ipv6Only: false });
d.on("message", (m, r) => console.log(r.address.replace(/^::ffff:/, "") + " " + m));
d.bind(Number(process.argv[1]), "::", () => console.log("ready"));`;

/**
 * What stands in for the host's resolver (dns/): on RESOLVER_ADDRESS port 53, UDP answers "pong" and
 * prints "<source> <payload>", TCP says "dns".
 */
const RESOLVER_STANDIN = `
const d = require("node:dgram").createSocket("udp6");
d.on("message", (m, r) => { console.log(r.address + " " + m); d.send("pong", r.port, r.address); });
d.bind(${DNS_PORT}, "${RESOLVER_ADDRESS}", () => {
  require("node:net").createServer((s) => s.end("dns\\n")).listen(${DNS_PORT}, "${RESOLVER_ADDRESS}", () => console.log("ready"));
});`;

/** Sends one UDP datagram from a given source address: argv is source, destination, port, payload. */
const UDP_SEND = `
const [from, to, port, payload] = process.argv.slice(1);
const d = require("node:dgram").createSocket(to.includes(":") ? "udp6" : "udp4");
d.bind({ address: from }, () => d.send(payload, Number(port), to, () => d.close()));`;

/** The lines a program started with startIn has printed so far. */
function linesOf(child: ChildProcess): string[] {
  return ((child as ChildProcess & { printed?: string }).printed ?? "").split("\n").filter((l) => l !== "");
}

describe.runIf(canRun)("host network", () => {
  beforeAll(async () => {
    topology = await createNetworkTopology({ hosts: 2 });
    [h1, h2] = topology.hosts as [TopologyHost, TopologyHost];
    for (const host of [h1, h2]) networks.set(host.name, await hostNetwork(host));
  }, 60_000);

  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    rootServer?.close();
    for (const m of machines) {
      await networks.get(m.host.name)?.removeMachine(m.machineId);
      await releaseNetnsAddress(m.machineId, m.ipv4);
    }
    await topology?.close();
  }, 60_000);

  let a1: MachineLink;
  let a2: MachineLink;
  let a3: MachineLink;
  let b1: MachineLink;

  it("puts machines on their org's network and routes it across hosts", async () => {
    // Set up together, as starts that come at once are: each gets its devices and is in the one
    // firewall that covers them all (the tests below check the org boundary on these machines).
    [a1, a3, b1, a2] = await Promise.all([
      addMachine("hna1-", h1, orgA),
      addMachine("hna3-", h1, orgA),
      addMachine("hnb1-", h1, orgB),
      addMachine("hna2-", h2, orgA),
    ]);
    await network(h1).setRemoteRoutes([{ address: v6(a2), via: h2.underlayIp }]);
    await network(h2).setRemoteRoutes([a1, a3, b1].map((m) => ({ address: v6(m), via: h1.underlayIp })));
    await startIn(netnsName(a2.machineId), ECHO_SERVER, [String(ECHO_PORT)]);
    await startIn(netnsName(a3.machineId), ECHO_SERVER, [String(ECHO_PORT)]);
    // Across hosts and on the same host, any port; the server sees the client's own 6PN address.
    expect(
      await connectFrom(netnsName(a1.machineId), [
        { host: v6(a2), port: ECHO_PORT },
        { host: v6(a3), port: ECHO_PORT },
      ]),
    ).toEqual([v6(a1), v6(a1)]);
    expect(await connectFrom(netnsName(a2.machineId), [{ host: v6(a3), port: ECHO_PORT }])).toEqual([v6(a2)]);
  });

  it("keeps another org's machine out, even when it knows the address or forges an org address", async () => {
    const b1ns = netnsName(b1.machineId);
    // Another org's machine, which knows the addresses: nothing, over IPv6 or IPv4, same host or not.
    const results = await connectFrom(b1ns, [
      { host: v6(a2), port: ECHO_PORT },
      { host: v6(a3), port: ECHO_PORT },
      { host: a3.ipv4, port: ECHO_PORT },
    ]);
    for (const result of results) expect(result).toMatch(/^refused/);

    // Root in its namespace, as a machine with CAP_NET_RAW could be, b1 sends from addresses that are
    // not its own: an org A address, and a1's IPv4 address. Only what a1 itself sends arrives.
    for (const address of [`${v6(a1)}/128`, `${a1.ipv4}/32`]) {
      const argv = [IP, "addr", "add", address, "dev", "eth0", ...(address.includes(":") ? ["nodad"] : [])];
      expect((await topology.exec(b1ns, argv)).code).toBe(0);
    }
    const recorders = [
      await startIn(netnsName(a2.machineId), UDP_RECORDER, [String(UDP_PORT)]),
      await startIn(topology.internet.netns, UDP_RECORDER, [String(UDP_PORT)]),
      await startIn(h1.netns, RESOLVER_STANDIN),
    ];
    const send = (ns: string, from: string, to: string, payload: string, port = UDP_PORT) =>
      topology.exec(ns, [process.execPath, "-e", UDP_SEND, from, to, String(port), payload]);
    await send(b1ns, v6(a1), v6(a2), "forged-v6");
    // The resolver tells askers' orgs by their source address: a forged one never reaches it.
    await send(b1ns, v6(a1), RESOLVER_ADDRESS, "forged-dns", DNS_PORT);
    await send(netnsName(a1.machineId), v6(a1), RESOLVER_ADDRESS, "real-dns", DNS_PORT);
    await send(b1ns, a1.ipv4, topology.internet.ip, "forged-v4");
    await send(netnsName(a1.machineId), v6(a1), v6(a2), "real-v6");
    await send(netnsName(a1.machineId), a1.ipv4, topology.internet.ip, "real-v4");
    await waitUntil(() => recorders.every((r) => linesOf(r).length >= 2));
    expect(linesOf(recorders[0] as ChildProcess).slice(1)).toEqual([`${v6(a1)} real-v6`]);
    // The internet sees the host's address (NAT), and only a1's datagram.
    expect(linesOf(recorders[1] as ChildProcess).slice(1)).toEqual(["10.99.0.1 real-v4"]);
    expect(linesOf(recorders[2] as ChildProcess).slice(1)).toEqual([`${v6(a1)} real-dns`]);
  });

  it("lets no forged 6PN source in from off the host: a neighbour on the underlay posing as org A", async () => {
    // The internet namespace is on the fabric, as any neighbour of the hosts' underlay is. It routes
    // a2's address to a2's host and sends from an org A address that is no machine's.
    const neighbour = topology.internet.netns;
    const forged = orgA.prefix.replace("::/48", "::bad");
    for (const argv of [
      [IP, "addr", "add", "fd00:99::fe/64", "dev", "underlay", "nodad"],
      [IP, "addr", "add", `${forged}/128`, "dev", "lo", "nodad"],
      [IP, "-6", "route", "add", `${v6(a2)}/128`, "via", h2.underlayIp],
    ]) {
      expect((await topology.exec(neighbour, argv)).code).toBe(0);
    }
    const recorder = await startIn(netnsName(a2.machineId), UDP_RECORDER, [String(UDP_PORT + 1)]);
    const send = (ns: string, from: string) =>
      topology.exec(ns, [process.execPath, "-e", UDP_SEND, from, v6(a2), String(UDP_PORT + 1), "hello"]);
    await send(neighbour, forged);
    // a1 is a known remote machine of org A (h2 routes to it): what it sends arrives.
    await send(netnsName(a1.machineId), v6(a1));
    await waitUntil(() => linesOf(recorder).length >= 2);
    expect(linesOf(recorder).slice(1)).toEqual([`${v6(a1)} hello`]);
  });

  it("lets a machine out to the internet through NAT on its host's address", async () => {
    await startIn(topology.internet.netns, ECHO_SERVER, [String(ECHO_PORT)]);
    expect(
      await connectFrom(netnsName(a1.machineId), [
        { host: topology.internet.ip, port: ECHO_PORT },
        { host: topology.internet.ip, port: topology.internet.port, silent: true },
      ]),
    ).toEqual(["10.99.0.1", "connected"]);
  });

  it("lets the control plane reach a machine's IPv4 address, and a machine never its host's ports, but the resolver", async () => {
    // The control plane: this test's namespace, through the topology's route to the machine CIDR.
    const fromRoot = await new Promise<string>((resolve, reject) => {
      const socket = createConnection(ECHO_PORT, a3.ipv4);
      socket.once("error", reject);
      socket.once("data", (chunk) => {
        resolve(String(chunk).split("\n")[0] ?? "");
        socket.destroy();
      });
    });
    // The uplink's end in this namespace: not masqueraded, not taken for a machine.
    expect(fromRoot).toBe(hostEnd(h1.uplinkIp));

    // Listeners on every address of the host's namespace and of this one (the resolver's stand-in runs since the test before).
    await startIn(h1.netns, ECHO_SERVER, [String(ECHO_PORT)]);
    rootServer = createServer((s) => s.end("root\n"));
    await new Promise<void>((resolve) => rootServer?.listen(0, "0.0.0.0", resolve));

    // Every listening socket of the host's namespace and of this one, at every address a machine can
    // name for it (a wildcard one at each of that namespace's addresses).
    const targets: Target[] = [];
    for (const ns of [h1.netns, undefined]) {
      const addresses = await addressesOf(ns);
      for (const { address, port } of await listenersOf(ns)) {
        for (const host of address === "*" ? addresses : [address]) {
          if (host === RESOLVER_ADDRESS && port === DNS_PORT) continue;
          targets.push({ host, port, silent: true });
        }
      }
    }
    // The host end's link-local, the machine's IPv6 gateway.
    targets.push({ host: `${HOST_END_V6}%eth0`, port: ECHO_PORT, silent: true });
    expect(targets.length).toBeGreaterThan(10);
    const results = await connectFrom(netnsName(a1.machineId), targets);
    const reached = targets.filter((_, i) => !results[i]?.startsWith("refused"));
    expect(reached).toEqual([]);

    // DNS to the resolver passes, over UDP and TCP.
    const udp = await topology.exec(netnsName(a1.machineId), [
      process.execPath,
      "-e",
      UDP_ASK,
      RESOLVER_ADDRESS,
      String(DNS_PORT),
    ]);
    expect(udp.stdout.trim()).toBe("pong");
    expect(await connectFrom(netnsName(a1.machineId), [{ host: RESOLVER_ADDRESS, port: DNS_PORT }])).toEqual([
      "dns",
    ]);
  });

  it("keeps connections, addresses and routes when the agents restart and ensure their machines again", async () => {
    // A client in a1 holding a connection to a2, across hosts, that echoes what it is sent.
    const client = await startIn(
      netnsName(a1.machineId),
      `const s = require("node:net").connect(${ECHO_PORT}, "${v6(a2)}", () => console.log("ready"));
       s.pipe(process.stdout); process.stdin.pipe(s);`,
    );
    const echoed = (text: string) =>
      new Promise<void>((resolve) => {
        const onData = (chunk: Buffer) => {
          if (String(chunk).includes(text)) {
            client.stdout?.off("data", onData);
            resolve();
          }
        };
        client.stdout?.on("data", onData);
        client.stdin?.write(`${text}\n`);
      });
    await echoed("before");
    const kernelState = async () =>
      Promise.all([
        topology.exec(netnsName(a1.machineId), [IP, "addr", "show", "dev", "eth0"]),
        topology.exec(h1.netns, [IP, "-6", "route", "show"]),
        topology.exec(h2.netns, [IP, "-6", "route", "show"]),
      ]).then((outputs) => outputs.map((o) => o.stdout));
    const before = await kernelState();

    // New agents: what they open with (read back from the kernel) already lets the machines talk.
    for (const host of [h1, h2]) networks.set(host.name, await hostNetwork(host));
    await echoed("after-open");
    const table = await topology.exec(h1.netns, [
      "/usr/sbin/nft",
      "list",
      "set",
      "inet",
      `hangar_hn_h1_${tag}`,
      "org_peers",
    ]);
    expect(table.stdout).toContain(orgA.prefix);

    for (const m of machines) await network(m.host).ensureMachine(m);
    await network(h1).setRemoteRoutes([{ address: v6(a2), via: h2.underlayIp }]);
    await network(h2).setRemoteRoutes([a1, a3, b1].map((m) => ({ address: v6(m), via: h1.underlayIp })));
    await echoed("after-ensure");
    expect(await kernelState()).toEqual(before);
  });

  it("refuses a host namespace that does not exist, saying what to do", async () => {
    await expect(hostNetwork({ ...h1, netns: `hn-missing-${tag}` })).rejects.toThrow(
      /does not exist .*ip netns add hn-missing-/,
    );
  });

  it("replaces the set of remote routes: what is no longer wanted goes, other routes stay", async () => {
    const other = `fdaa:ffff:1::9`;
    await network(h1).exec([IP, "-6", "route", "add", `${other}/128`, "via", h2.underlayIp]);
    await network(h1).setRemoteRoutes([]);
    const routes = (await topology.exec(h1.netns, [IP, "-6", "route", "show"])).stdout;
    expect(routes).not.toContain(v6(a2));
    expect(routes).toContain(other);
    expect(await connectFrom(netnsName(a1.machineId), [{ host: v6(a2), port: ECHO_PORT }])).toEqual([
      expect.stringMatching(/^refused/),
    ]);
    await network(h1).setRemoteRoutes([{ address: v6(a2), via: h2.underlayIp }]);
    expect(await connectFrom(netnsName(a1.machineId), [{ host: v6(a2), port: ECHO_PORT }])).toEqual([v6(a1)]);
    await expect(network(h1).setRemoteRoutes([{ address: "10.0.0.1", via: h2.underlayIp }])).rejects.toThrow(
      /not an IPv6 route/,
    );
  });
});

/** Runs a command in namespace `ns`, or in this one when undefined; returns its stdout. */
async function runIn(ns: string | undefined, argv: string[]): Promise<string> {
  if (ns) {
    const result = await topology.exec(ns, argv);
    if (result.code !== 0) throw new Error(`${argv.join(" ")} in ${ns}: ${result.stderr}`);
    return result.stdout;
  }
  const [file = "", ...args] = argv;
  return (await execFileAsync(file, args)).stdout;
}

/** The addresses of a namespace but loopback ones (a machine's loopback is its own) and link-locals (not on its link). */
async function addressesOf(ns: string | undefined): Promise<string[]> {
  const shown = JSON.parse(await runIn(ns, [IP, "-j", "addr", "show"])) as Array<{
    addr_info?: Array<{ local: string; scope: string }>;
  }>;
  return shown
    .flatMap((l) => l.addr_info ?? [])
    .filter((a) => a.scope === "global")
    .map((a) => a.local);
}

/** The listening TCP sockets of a namespace (`ss -ltnH`): "*" for a wildcard address; loopback ones left out. */
async function listenersOf(ns: string | undefined): Promise<Array<{ address: string; port: number }>> {
  const listeners: Array<{ address: string; port: number }> = [];
  for (const line of (await runIn(ns, ["ss", "-ltnH"])).split("\n")) {
    const local = line.trim().split(/\s+/)[3];
    const match = local ? /^\[?(.*?)\]?(?:%\S+)?:(\d+)$/.exec(local) : null;
    if (!match) continue;
    const [, raw = "", port = ""] = match;
    if (raw.startsWith("127.") || raw === "::1") continue;
    const address = raw === "0.0.0.0" || raw === "::" || raw === "*" ? "*" : raw;
    listeners.push({ address, port: Number(port) });
  }
  return listeners;
}

/** Polls `done` every 50 ms for up to 5 s. */
async function waitUntil(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}

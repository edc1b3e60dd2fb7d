import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { createLogger } from "@hangar/telemetry";
import { createNetworkTopology, type NetworkTopology } from "@hangar/testkit";
import DNS, { Packet } from "dns2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordType } from "../src/dns/names.js";
import { probeDns } from "../src/dns/probe.js";
import { ResolverProcess } from "../src/dns/resolver-process.js";
import { IP } from "../src/driver/netns.js";
import { RESOLVER_ADDRESS } from "../src/network/host-network.js";

const run = promisify(execFile);

/** A machine-like namespace of this test file, joined to the host namespace by a veth pair. */
const MACHINE_NS = `hgdns${process.pid}`;
const HOST_END = `hgd${process.pid % 100_000}h`;
const MACHINE_END = `hgd${process.pid % 100_000}m`;
const KNOWN = "fdaa:0:1:0:a::2";
const STRANGER = "fdaa:0:9:0:9::9";
const OTHER_ORG = "fdaa:0:2:0:c::2";

let topology: NetworkTopology;
let dns: ResolverProcess;
let upstream: DNS.UDPServer;

function query(name: string, type: number): Buffer {
  const q = new Packet();
  q.header.rd = 1;
  q.questions.push({ name, type, class: Packet.CLASS.IN } as DNS.Packet.Question);
  return q.toBuffer();
}

async function ask(
  name: string,
  type: number,
  o: { source?: string; transport?: "udp" | "tcp"; timeoutMs?: number } = {},
) {
  const [result] = await probeDns({
    netns: MACHINE_NS,
    server: RESOLVER_ADDRESS,
    source: o.source ?? KNOWN,
    transport: o.transport ?? "udp",
    queries: [query(name, type)],
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
  });
  if (!result?.reply) throw new Error(`no reply to ${name}`);
  return Packet.parse(result.reply);
}

const ipIn = (ns: string, ...args: string[]) => run(IP, ["-n", ns, ...args]);

describe.runIf(process.getuid?.() === 0 && existsSync(IP))("internal DNS in a host namespace", () => {
  beforeAll(async () => {
    topology = await createNetworkTopology({ hosts: 1, internet: false });
    const host = topology.hosts[0]?.netns as string;
    // What HostNetwork.open and a machine's set-up do, reduced to what DNS needs: the resolver's
    // address in the host namespace, a machine namespace with two addresses routed to it.
    await ipIn(host, "addr", "replace", `${RESOLVER_ADDRESS}/128`, "dev", "lo", "nodad");
    await run(IP, ["netns", "add", MACHINE_NS]);
    await run(IP, [
      "link",
      "add",
      HOST_END,
      "netns",
      host,
      "type",
      "veth",
      "peer",
      "name",
      MACHINE_END,
      "netns",
      MACHINE_NS,
    ]);
    await ipIn(host, "addr", "add", "fe80::1/64", "dev", HOST_END, "nodad");
    await ipIn(host, "link", "set", HOST_END, "up");
    await ipIn(MACHINE_NS, "link", "set", "lo", "up");
    await ipIn(MACHINE_NS, "link", "set", MACHINE_END, "up");
    for (const address of [KNOWN, STRANGER, OTHER_ORG]) {
      await ipIn(MACHINE_NS, "addr", "add", `${address}/128`, "dev", MACHINE_END, "nodad");
      await ipIn(host, "route", "add", `${address}/128`, "dev", HOST_END);
    }
    await ipIn(MACHINE_NS, "route", "add", `${RESOLVER_ADDRESS}/128`, "via", "fe80::1", "dev", MACHINE_END);

    upstream = DNS.createUDPServer((request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const question = request.questions[0] as DNS.Packet.Question;
      if (question.name === "silent.example") return;
      response.answers.push({
        name: question.name,
        type: Packet.TYPE.A,
        class: 1,
        ttl: 60,
        address: "192.0.2.7",
      } as DNS.Packet.Resource);
      send(response);
    });
    await new Promise<void>((resolve) => upstream.bind(0, "127.0.0.1", () => resolve()));
    const port = (upstream.address() as { port: number }).port;

    dns = await ResolverProcess.open({
      netns: host,
      address: RESOLVER_ADDRESS,
      hostId: "h1",
      region: "ams",
      upstreams: [{ address: "127.0.0.1", port }],
      forwardTimeoutMs: 500,
      logger: createLogger("dns-test", { level: "silent" }),
    });
    const base = { region: "ams", hostId: "h1", processGroup: "app", ipv4: "", started: true, running: true };
    dns.upsert({ ...base, id: "a1", app: "a", org: "acme", address: KNOWN });
    dns.upsert({ ...base, id: "b1", app: "b", org: "acme", address: "fdaa:0:1:0:b::2", hostId: "h2" });
    dns.upsert({ ...base, id: "c1", app: "c", org: "other", address: OTHER_ORG });
    await dns.sync();
  });

  afterAll(async () => {
    await dns?.close();
    upstream?.close();
    await run(IP, ["netns", "delete", MACHINE_NS]).catch(() => undefined);
    await topology?.close();
  });

  it("answers a machine's .internal query over UDP and TCP, from the host namespace", async () => {
    for (const transport of ["udp", "tcp"] as const) {
      const reply = await ask("b.internal", RecordType.AAAA, { transport });
      expect(reply.header.rcode).toBe(Packet.RCODE.NOERROR);
      expect(reply.answers.map((a) => a.address)).toEqual(["fdaa:0:1:0:b::2"]);
      expect(reply.answers[0]?.ttl).toBeLessThanOrEqual(5);
    }
    const apps = await ask("_apps.internal", RecordType.TXT);
    expect(apps.answers.map((a) => a.data)).toEqual([["a,b"]]);
  });

  it("answers the same question again (from its encoded answer) with each query's own id", async () => {
    const results = await probeDns({
      netns: MACHINE_NS,
      server: RESOLVER_ADDRESS,
      source: KNOWN,
      queries: [0, 1, 2].map(() => query("top1.nearest.of.b.internal", RecordType.AAAA)),
    });
    expect(results.map((r) => r.reply && Packet.parse(r.reply).header.id)).toEqual([0, 1, 2]);
    expect(results.map((r) => r.reply && Packet.parse(r.reply).answers.map((a) => a.address))).toEqual(
      [0, 1, 2].map(() => ["fdaa:0:1:0:b::2"]),
    );
  });

  it("truncates a UDP answer too long for 512 bytes (TC), and answers it whole over TCP", async () => {
    const base = { region: "ams", hostId: "h2", processGroup: "app", ipv4: "", started: true, running: true };
    for (let i = 1; i <= 40; i++)
      dns.upsert({ ...base, id: `big${i}`, app: "big", org: "acme", address: `fdaa:0:1:0:e::${i}` });
    await dns.sync();
    const [udp] = await probeDns({
      netns: MACHINE_NS,
      server: RESOLVER_ADDRESS,
      source: KNOWN,
      queries: [query("big.internal", RecordType.AAAA)],
    });
    expect(udp?.reply?.length).toBeLessThanOrEqual(512);
    const truncated = Packet.parse(udp?.reply as Buffer);
    expect(truncated.header.tc).toBe(1);
    expect(truncated.answers.length).toBeGreaterThan(0);
    expect(truncated.answers.length).toBeLessThan(40);
    const whole = await ask("big.internal", RecordType.AAAA, { transport: "tcp" });
    expect(whole.header.tc).toBe(0);
    expect(whole.answers).toHaveLength(40);
  });

  it("tells another org's machine that b.internal does not exist", async () => {
    const reply = await ask("b.internal", RecordType.AAAA, { source: OTHER_ORG });
    expect(reply.header.rcode).toBe(Packet.RCODE.NXDOMAIN);
    expect(reply.answers).toEqual([]);
  });

  it("refuses a source that is no machine of this host", async () => {
    const reply = await ask("b.internal", RecordType.AAAA, { source: STRANGER });
    expect(reply.header.rcode).toBe(Packet.RCODE.REFUSED);
    const forwarded = await ask("example.com", Packet.TYPE.A, { source: STRANGER });
    expect(forwarded.header.rcode).toBe(Packet.RCODE.REFUSED);
  });

  it("forwards other names to the host's resolver", async () => {
    const reply = await ask("example.com", Packet.TYPE.A);
    expect(reply.header.rcode).toBe(Packet.RCODE.NOERROR);
    expect(reply.answers.map((a) => a.address)).toEqual(["192.0.2.7"]);
  });

  it("answers SERVFAIL when the host's resolver does not answer in time", async () => {
    const reply = await ask("silent.example", Packet.TYPE.A, { timeoutMs: 3_000 });
    expect(reply.header.rcode).toBe(Packet.RCODE.SERVFAIL);
  });

  it("starts a resolver process that died again, with the whole table", async () => {
    const pid = dns.pid;
    if (pid === undefined) throw new Error("no resolver process");
    process.kill(pid, "SIGKILL");
    await expect.poll(() => dns.pid !== pid && dns.pid !== undefined, { timeout: 15_000 }).toBe(true);
    await dns.sync();
    const reply = await ask("a.internal", RecordType.AAAA);
    expect(reply.answers.map((a) => (a as { address?: string }).address)).toEqual([KNOWN]);
  });

  it("reflects a stop in the next answer", async () => {
    dns.upsert({
      id: "b1",
      app: "b",
      org: "acme",
      region: "ams",
      hostId: "h2",
      processGroup: "app",
      address: "fdaa:0:1:0:b::2",
      ipv4: "",
      started: false,
      running: false,
    });
    await dns.sync();
    const reply = await ask("b.internal", RecordType.AAAA);
    expect(reply.header.rcode).toBe(Packet.RCODE.NOERROR);
    expect(reply.answers).toEqual([]);
  });
});

import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "@hangar/telemetry";
import type DNS from "dns2";
import { Packet } from "dns2";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DnsMachine } from "./names.js";
import { InternalDns, type InternalDnsOptions } from "./server.js";

// The resolver on [::1]:<free port> of this namespace (no root needed); machines of this host ask
// from their addresses (answer() directly) or, over TCP, from ::1 (a machine's address here).
const A = "fdaa:0:1:0:a::2";
const B = "fdaa:0:1:0:b::2";
const base = { region: "ams", hostId: "h1", processGroup: "app", ipv4: "", started: true, running: true };
const machines: DnsMachine[] = [
  { ...base, id: "a1", app: "a", org: "acme", address: A },
  { ...base, id: "b1", app: "b", org: "acme", address: B },
  { ...base, id: "l1", app: "l", org: "acme", address: "::1" },
];

let dns: InternalDns | undefined;
let upstream: UdpSocket | undefined;
const clients: Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await dns?.close();
  dns = undefined;
  upstream?.close();
  upstream = undefined;
});

async function open(o: Partial<InternalDnsOptions> = {}): Promise<InternalDns> {
  dns = await InternalDns.open({
    address: "::1",
    port: 0,
    hostId: "h1",
    region: "ams",
    upstreams: [],
    logger: createLogger("dns-test", { level: "silent" }),
    ...o,
  });
  for (const m of machines) dns.table.upsert(m);
  return dns;
}

/** An upstream that holds every query until the test answers it. */
async function heldUpstream(): Promise<{
  port: number;
  held: Array<{ msg: Buffer; rinfo: RemoteInfo }>;
  reply: (h: { msg: Buffer; rinfo: RemoteInfo }, address: string, from?: UdpSocket) => void;
}> {
  const socket = createSocket("udp4");
  upstream = socket;
  const held: Array<{ msg: Buffer; rinfo: RemoteInfo }> = [];
  socket.on("message", (msg, rinfo) => held.push({ msg, rinfo }));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const reply = (h: { msg: Buffer; rinfo: RemoteInfo }, address: string, from: UdpSocket = socket) => {
    const response = Packet.createResponseFromRequest(Packet.parse(h.msg));
    const name = (response.questions[0] as DNS.Packet.Question).name;
    response.answers.push({ name, type: Packet.TYPE.A, class: 1, ttl: 60, address } as DNS.Packet.Resource);
    from.send(response.toBuffer(), h.rinfo.port, h.rinfo.address);
  };
  return { port: socket.address().port, held, reply };
}

function query(name: string, type: number, id = 0): Buffer {
  const q = new Packet();
  q.header.id = id;
  q.header.rd = 1;
  q.questions.push({ name, type, class: Packet.CLASS.IN } as DNS.Packet.Question);
  return q.toBuffer();
}

/** A promise that can be asked whether it has settled. */
function tracked<T>(p: Promise<T>): { p: Promise<T>; settled: () => boolean } {
  let settled = false;
  void p.finally(() => {
    settled = true;
  });
  return { p, settled: () => settled };
}

const rcodeOf = (reply: Buffer | undefined) => Packet.parse(reply as Buffer).header.rcode;

describe("InternalDns forwarding", () => {
  it("answers SERVFAIL at once past the per-asker and total caps while the upstream is silent, and forwards again once slots free", async () => {
    const up = await heldUpstream();
    const d = await open({
      upstreams: [{ address: "127.0.0.1", port: up.port }],
      forwardTimeoutMs: 60_000,
      maxForwardsPerAsker: 2,
      maxForwards: 3,
    });
    const a1 = tracked(d.answer(query("one.example", Packet.TYPE.A, 0x1111), A, "udp"));
    const a2 = tracked(d.answer(query("two.example", Packet.TYPE.A, 0x2222), A, "udp"));
    await expect.poll(() => up.held.length).toBe(2);
    // A's third: over its own cap, answered without waiting for the upstream.
    expect(rcodeOf(await d.answer(query("three.example", Packet.TYPE.A, 3), A, "udp"))).toBe(
      Packet.RCODE.SERVFAIL,
    );
    // B is under its own cap: forwarded, until the total cap (3) is reached.
    const b1 = tracked(d.answer(query("four.example", Packet.TYPE.A, 0x4444), B, "udp"));
    await expect.poll(() => up.held.length).toBe(3);
    expect(rcodeOf(await d.answer(query("five.example", Packet.TYPE.A, 5), B, "udp"))).toBe(
      Packet.RCODE.SERVFAIL,
    );
    expect(up.held).toHaveLength(3);
    expect([a1.settled(), a2.settled(), b1.settled()]).toEqual([false, false, false]);

    // The upstream saw ids of the resolver's own; each reply comes back under its client's id.
    const seen = up.held.map((h) => h.msg.readUInt16BE(0));
    expect(seen).not.toEqual([0x1111, 0x2222, 0x4444]);
    for (const h of up.held) up.reply(h, "192.0.2.7");
    const replies = (await Promise.all([a1.p, a2.p, b1.p])).map((r) => Packet.parse(r as Buffer));
    expect(replies.map((r) => r.header.id)).toEqual([0x1111, 0x2222, 0x4444]);
    expect(replies.map((r) => r.answers[0]?.address)).toEqual(["192.0.2.7", "192.0.2.7", "192.0.2.7"]);

    const again = tracked(d.answer(query("six.example", Packet.TYPE.A, 6), A, "udp"));
    await expect.poll(() => up.held.length).toBe(4);
    up.reply(up.held[3] as { msg: Buffer; rinfo: RemoteInfo }, "192.0.2.8");
    expect(Packet.parse((await again.p) as Buffer).answers[0]?.address).toBe("192.0.2.8");
  });

  it("takes a forwarded reply only from the upstream it asked, with the id it sent", async () => {
    const up = await heldUpstream();
    const d = await open({ upstreams: [{ address: "127.0.0.1", port: up.port }], forwardTimeoutMs: 60_000 });
    const pending = d.answer(query("spoofed.example", Packet.TYPE.A, 0x1234), A, "udp");
    await expect.poll(() => up.held.length).toBe(1);
    const h = up.held[0] as { msg: Buffer; rinfo: RemoteInfo };
    // Another socket with the right id and the client's own id, then the upstream with a wrong id:
    // all dropped; then the upstream's reply with the right id is the answer.
    const spoofer = createSocket("udp4");
    await new Promise<void>((resolve) => spoofer.bind(0, "127.0.0.1", () => resolve()));
    up.reply(h, "203.0.113.66", spoofer);
    const withClientId = Buffer.from(h.msg);
    withClientId.writeUInt16BE(0x1234, 0);
    up.reply({ msg: withClientId, rinfo: h.rinfo }, "203.0.113.67", spoofer);
    const wrongId = Buffer.from(h.msg);
    wrongId.writeUInt16BE((h.msg.readUInt16BE(0) + 1) & 0xffff, 0);
    up.reply({ msg: wrongId, rinfo: h.rinfo }, "203.0.113.68");
    await sleep(50); // lets the bad replies arrive first, if they were to be taken
    up.reply(h, "192.0.2.7");
    const reply = Packet.parse((await pending) as Buffer);
    spoofer.close();
    expect(reply.header.id).toBe(0x1234);
    expect(reply.answers.map((a) => a.address)).toEqual(["192.0.2.7"]);
  });
});

/** A TCP client of the resolver on [::1]: its replies as they are read, and whether it was closed. */
function tcpClient(port: number): { socket: Socket; replies: Buffer[]; closed: Promise<void> } {
  const socket = connect({ host: "::1", port });
  clients.push(socket);
  const replies: Buffer[] = [];
  let got = Buffer.alloc(0);
  socket.on("data", (d: Buffer) => {
    got = Buffer.concat([got, d]);
    while (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
      replies.push(got.subarray(2, 2 + got.readUInt16BE(0)));
      got = got.subarray(2 + got.readUInt16BE(0));
    }
  });
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  return { socket, replies, closed };
}

function framed(msg: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(msg.length);
  return Buffer.concat([length, msg]);
}

async function answered(c: { socket: Socket; replies: Buffer[] }): Promise<number> {
  const before = c.replies.length;
  c.socket.write(framed(query("a.internal", Packet.TYPE.AAAA, 7)));
  await expect.poll(() => c.replies.length).toBe(before + 1);
  return rcodeOf(c.replies[before]);
}

describe("InternalDns over TCP", () => {
  it("reads no more from a client that does not read its replies, and answers the rest once it does", async () => {
    const d = await open();
    // vms.big.internal TXT: about 40 KB a reply.
    for (let i = 0; i < 2_000; i++)
      d.table.upsert({
        ...base,
        hostId: "h2",
        id: `machine-${String(i).padStart(6, "0")}`,
        app: "big",
        org: "acme",
        address: `fdaa:0:1:0:e::${i.toString(16)}`,
      });
    const answer = vi.spyOn(d, "answer");
    const asked = 3_000;
    const c = tcpClient(d.port);
    c.socket.pause();
    const q = framed(query("vms.big.internal", Packet.TYPE.TXT));
    c.socket.write(Buffer.concat(Array.from({ length: asked }, () => q)));
    // Until the count stops growing: the kernel's buffers and one write buffer are full.
    let last = -1;
    while (answer.mock.calls.length !== last) {
      last = answer.mock.calls.length;
      await sleep(500);
    }
    expect(answer.mock.calls.length).toBeGreaterThan(0);
    expect(answer.mock.calls.length).toBeLessThan(asked / 2);
    c.socket.resume();
    await expect.poll(() => c.replies.length, { timeout: 30_000 }).toBe(asked);
    expect(answer.mock.calls.length).toBe(asked);
  });

  it("closes a machine's TCP clients past its own cap", async () => {
    const d = await open({ maxTcpClientsPerAsker: 2 });
    const [c1, c2] = [tcpClient(d.port), tcpClient(d.port)];
    expect(await answered(c1)).toBe(Packet.RCODE.NOERROR);
    expect(await answered(c2)).toBe(Packet.RCODE.NOERROR);
    const c3 = tcpClient(d.port);
    await c3.closed;
    expect(c3.replies).toEqual([]);
    expect(await answered(c1)).toBe(Packet.RCODE.NOERROR);
  });

  it("past the total cap closes the oldest idle client for a new one, and the new one when none is idle", async () => {
    const up = await heldUpstream();
    const d = await open({
      maxTcpClients: 2,
      upstreams: [{ address: "127.0.0.1", port: up.port }],
      forwardTimeoutMs: 60_000,
    });
    const c1 = tcpClient(d.port);
    expect(await answered(c1)).toBe(Packet.RCODE.NOERROR);
    const c2 = tcpClient(d.port);
    expect(await answered(c2)).toBe(Packet.RCODE.NOERROR);
    const c3 = tcpClient(d.port);
    expect(await answered(c3)).toBe(Packet.RCODE.NOERROR);
    await c1.closed;
    // c2 and c3 busy (each waits for the silent upstream): a fourth is refused.
    c2.socket.write(framed(query("x.example", Packet.TYPE.A)));
    c3.socket.write(framed(query("y.example", Packet.TYPE.A)));
    await expect.poll(() => up.held.length).toBe(2);
    const c4 = tcpClient(d.port);
    await c4.closed;
    expect(c4.replies).toEqual([]);
    expect(c2.socket.destroyed || c3.socket.destroyed).toBe(false);
  });
});

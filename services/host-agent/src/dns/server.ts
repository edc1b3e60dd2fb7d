import type { Socket as DgramSocket, RemoteInfo } from "node:dgram";
import type { Socket } from "node:net";
import type { Logger } from "@hangar/telemetry";
import type DNS from "dns2";
import { Packet } from "dns2";
import { forwardQuery, hostNameservers, type Upstream } from "./forward.js";
import { type DnsMachine, NameTable, RecordType, type Resolution } from "./names.js";
import { openResolverSockets, type ResolverSockets } from "./sockets.js";

/**
 * Seconds a client may keep an `.internal` answer. Fly's are a few seconds; one keeps a stopped
 * machine out of answers within a second of its event even behind a caching client.
 */
const TTL_S = 1;
/** The largest UDP reply to a client without EDNS (RFC 1035); larger ones are truncated (TC). */
const UDP_PLAIN_MAX = 512;
/** The largest UDP reply to an EDNS client: the common safe size that avoids fragmentation (DNS flag day 2020). */
const UDP_EDNS_MAX = 1232;
/** A TXT character-string holds at most 255 bytes (RFC 1035 3.3.14). */
const TXT_CHUNK = 255;
/** An idle TCP client is closed after this long (RFC 7766 suggests seconds). */
const TCP_IDLE_MS = 10_000;
/** Encoded answers kept per table version; past this many (names nobody asks twice), start over. */
const ANSWER_CACHE_MAX = 10_000;
/**
 * Default limits, so that one machine cannot take DNS away from the host's other machines: each
 * forward holds a socket until its reply or timeout, each TCP client a socket and its buffers.
 */
const DEFAULT_LIMITS = {
  maxForwards: 256,
  maxForwardsPerAsker: 32,
  maxTcpClients: 256,
  maxTcpClientsPerAsker: 16,
};

export interface InternalDnsOptions {
  /** HANGAR_HOST_AGENT_NETNS: the host's network namespace, where machines reach the resolver; this process's own when none. */
  netns?: string;
  /** The resolver's address (RESOLVER_ADDRESS, every machine's nameserver). */
  address: string;
  /** 53 unless a test says otherwise. */
  port?: number;
  hostId: string;
  region: string;
  /** HANGAR_HOST_AGENT_REGION_ORDER: regions nearest first, for `top<N>.nearest.of`. */
  regionOrder?: readonly string[];
  /** Where names outside `.internal` go; the host's /etc/resolv.conf nameservers when not given. */
  upstreams?: readonly Upstream[];
  /** How long forwarding waits for all upstreams together before answering SERVFAIL. */
  forwardTimeoutMs?: number;
  /** Forwards in flight at once, all askers together; past it, a forwarded name is SERVFAIL at once. 256. */
  maxForwards?: number;
  /** Forwards in flight at once for one asking machine; past it, SERVFAIL at once. 32. */
  maxForwardsPerAsker?: number;
  /** TCP clients at once; past it, the oldest idle one is closed for a new one, or the new one when none is idle. 256. */
  maxTcpClients?: number;
  /** TCP clients at once from one machine (any other source: one address); past it, a new one is closed. 16. */
  maxTcpClientsPerAsker?: number;
  logger: Pick<Logger, "info" | "warn">;
}

/**
 * One host's resolver for its machines, as Fly's on fdaa::3: Fly's `.internal` names from the name
 * table, only for the asking machine's org (known by the query's source address; any other source
 * is REFUSED), other names forwarded to the host's resolvers. Serves UDP and TCP on sockets opened
 * in the host's network namespace and held by this process: the resolver process (ResolverProcess).
 */
export class InternalDns {
  /** The names it answers; fed by `update`. */
  readonly table: NameTable;
  private readonly upstreams: readonly Upstream[];
  private readonly forwardTimeoutMs: number;
  private readonly limits: typeof DEFAULT_LIMITS;
  /** Open TCP clients, oldest first: who they are (for the per-asker cap) and whether one is at work. */
  private readonly tcpClients = new Map<Socket, { asker: string; busy: boolean }>();
  /** Forwards in flight, all together and by asking machine. */
  private forwards = 0;
  private readonly forwardsByAsker = new Map<string, number>();
  /**
   * Encoded `.internal` replies by org, name as asked, type and size limit, valid for one table
   * version: encoding is most of a query's cost (dns2 takes tens of µs a record), and a hit only
   * needs the query's id and RD flag.
   */
  private readonly answers = new Map<string, Buffer>();
  private answersVersion = -1;

  private constructor(
    private readonly opts: InternalDnsOptions,
    private readonly sockets: ResolverSockets,
  ) {
    this.table = new NameTable({
      hostId: opts.hostId,
      region: opts.region,
      ...(opts.regionOrder ? { regionOrder: opts.regionOrder } : {}),
    });
    this.upstreams = opts.upstreams ?? hostNameservers(opts.address);
    this.forwardTimeoutMs = opts.forwardTimeoutMs ?? 2_000;
    this.limits = {
      maxForwards: opts.maxForwards ?? DEFAULT_LIMITS.maxForwards,
      maxForwardsPerAsker: opts.maxForwardsPerAsker ?? DEFAULT_LIMITS.maxForwardsPerAsker,
      maxTcpClients: opts.maxTcpClients ?? DEFAULT_LIMITS.maxTcpClients,
      maxTcpClientsPerAsker: opts.maxTcpClientsPerAsker ?? DEFAULT_LIMITS.maxTcpClientsPerAsker,
    };
    sockets.udp.on("message", (msg, rinfo) => this.onDatagram(msg, rinfo));
    sockets.udp.on("error", (err) => opts.logger.warn({ err }, "DNS resolver UDP socket error"));
    sockets.tcp.on("connection", (socket) => this.onConnection(socket));
  }

  /** Opens the resolver's sockets in the host's namespace and serves from an empty table. */
  static async open(opts: InternalDnsOptions): Promise<InternalDns> {
    const port = opts.port ?? 53;
    const sockets = await openResolverSockets({
      address: opts.address,
      port,
      ...(opts.netns ? { netns: opts.netns } : {}),
    });
    const dns = new InternalDns(opts, sockets);
    opts.logger.info(
      {
        address: opts.address,
        port,
        netns: opts.netns ?? null,
        upstreams: dns.upstreams.map((u) => u.address),
      },
      "internal DNS resolver serving",
    );
    return dns;
  }

  /** The port it serves on (UDP and TCP). */
  get port(): number {
    return this.sockets.udp.address().port;
  }

  /** The reply to one DNS message from `source` over `transport`; undefined when it gets none. */
  async answer(msg: Buffer, source: string, transport: "udp" | "tcp"): Promise<Buffer | undefined> {
    let query: Packet;
    try {
      query = Packet.parse(msg);
    } catch {
      return undefined; // No usable header: nothing to reply to.
    }
    if (query.header.qr === 1) return undefined;
    const question = query.questions[0];
    if (query.header.opcode !== 0) return this.error(query, Packet.RCODE.NOTIMP);
    if (!question || query.questions.length !== 1) return this.error(query, Packet.RCODE.FORMERR);
    const asker = this.table.asker(source);
    if (!asker) return this.error(query, Packet.RCODE.REFUSED);
    const maxSize = transport === "tcp" ? 0xffff : udpLimit(query);
    if (this.answersVersion !== this.table.version) {
      this.answers.clear();
      this.answersVersion = this.table.version;
    }
    const key = `${asker.org}\n${question.name}\n${question.type}\n${question.class}\n${maxSize}`;
    const cached = this.answers.get(key);
    if (cached) return asReplyTo(query, cached);
    const resolution = this.table.resolve(asker.org, question.name, question.type);
    if (resolution.kind === "forward") {
      // Bounded, never queued: past either cap the answer is SERVFAIL now, and the asker retries.
      const who = askerKey(asker);
      const mine = this.forwardsByAsker.get(who) ?? 0;
      if (this.forwards >= this.limits.maxForwards || mine >= this.limits.maxForwardsPerAsker)
        return this.error(query, Packet.RCODE.SERVFAIL);
      this.forwards++;
      this.forwardsByAsker.set(who, mine + 1);
      try {
        const reply = await forwardQuery(
          msg,
          this.upstreams,
          this.forwardTimeoutMs / Math.max(1, this.upstreams.length),
        );
        return reply ?? this.error(query, Packet.RCODE.SERVFAIL);
      } finally {
        this.forwards--;
        const left = (this.forwardsByAsker.get(who) ?? 1) - 1;
        if (left > 0) this.forwardsByAsker.set(who, left);
        else this.forwardsByAsker.delete(who);
      }
    }
    if (this.answers.size >= ANSWER_CACHE_MAX) this.answers.clear();
    const reply = this.encode(query, question, resolution, maxSize);
    this.answers.set(key, reply);
    return reply;
  }

  /** The reply for an `.internal` name: NXDOMAIN, or its records (as many as fit in `maxSize`, TC when not all). */
  private encode(
    query: Packet,
    question: DNS.Packet.Question,
    resolution: Exclude<Resolution, { kind: "forward" }>,
    maxSize: number,
  ): Buffer {
    const response = Packet.createResponseFromRequest(query);
    response.header.aa = 1;
    response.header.ra = 1;
    if (resolution.kind === "nxdomain") {
      response.header.rcode = Packet.RCODE.NXDOMAIN;
      return response.toBuffer();
    }
    const record = { name: question.name, class: Packet.CLASS.IN, ttl: TTL_S };
    for (const address of resolution.aaaa)
      response.answers.push({ ...record, type: RecordType.AAAA, address } as DNS.Packet.Resource);
    for (const text of resolution.txt)
      response.answers.push({ ...record, type: RecordType.TXT, data: chunks(text) } as DNS.Packet.Resource);
    let buffer = response.toBuffer();
    if (buffer.length <= maxSize) return buffer;
    // Too long for this client's UDP: as many answers as fit, flagged so it asks again over TCP. The
    // first cut assumes answers of equal size (AAAA records are), so few encodings follow it.
    const answers = response.answers;
    response.answers = [];
    const bare = response.toBuffer().length;
    const perAnswer = (buffer.length - bare) / answers.length;
    response.answers = answers.slice(0, Math.max(0, Math.floor((maxSize - bare) / perAnswer)));
    response.header.tc = 1;
    buffer = response.toBuffer();
    while (buffer.length > maxSize && response.answers.length > 0) {
      response.answers.pop();
      buffer = response.toBuffer();
    }
    return buffer;
  }

  /** Stops serving: closes the sockets and every TCP client. */
  async close(): Promise<void> {
    for (const c of this.tcpClients.keys()) c.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.sockets.udp.close(() => resolve())),
      new Promise<void>((resolve) => this.sockets.tcp.close(() => resolve())),
    ]);
  }

  private error(query: Packet, rcode: number): Buffer {
    const response = Packet.createErrorResponseFromRequest(query, rcode);
    response.header.ra = 1;
    return response.toBuffer();
  }

  private onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    const udp: DgramSocket = this.sockets.udp;
    void this.answer(msg, rinfo.address, "udp").then(
      (reply) => {
        // The socket may have closed meanwhile (the resolver stopping): the query goes unanswered.
        if (reply) {
          try {
            udp.send(reply, rinfo.port, rinfo.address);
          } catch {
            // Nothing to answer on.
          }
        }
      },
      (err: unknown) => this.opts.logger.warn({ err, source: rinfo.address }, "DNS query failed"),
    );
  }

  /**
   * DNS over TCP (RFC 7766): messages framed by a two-byte length, answered in turn, one at a time.
   * Nothing more is read while a message is being answered or while the client's write buffer is
   * full (it does not read its replies), so a client holds at most one read chunk and one buffer of
   * replies here; the kernel's TCP flow control holds it back from there.
   */
  private onConnection(socket: Socket): void {
    const source = socket.remoteAddress ?? "";
    const asker = this.tcpAsker(source);
    if (!this.admit(asker)) {
      socket.destroy();
      return;
    }
    const client = { asker, busy: false };
    this.tcpClients.set(socket, client);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on("close", () => this.tcpClients.delete(socket));
    socket.on("error", () => socket.destroy());
    let pending: Buffer = Buffer.alloc(0);
    const pump = async (): Promise<void> => {
      while (!socket.destroyed && pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const msg = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + msg.length);
        const reply = await this.answer(msg, source, "tcp").catch(() => undefined);
        if (!reply || socket.destroyed) continue;
        const length = Buffer.alloc(2);
        length.writeUInt16BE(reply.length);
        if (!socket.write(Buffer.concat([length, reply]))) {
          socket.once("drain", () => void pump());
          return;
        }
      }
      client.busy = false;
      socket.resume();
    };
    socket.on("data", (data: Buffer) => {
      pending = pending.length > 0 ? Buffer.concat([pending, data]) : data;
      if (client.busy) return;
      client.busy = true;
      socket.pause();
      void pump();
    });
  }

  /**
   * Whether a new TCP client may stay: not past its asker's cap, and under the total cap, for which
   * the oldest idle client (nothing being answered, nothing unwritten) is closed when need be.
   */
  private admit(asker: string): boolean {
    let mine = 0;
    for (const c of this.tcpClients.values()) if (c.asker === asker) mine++;
    if (mine >= this.limits.maxTcpClientsPerAsker) return false;
    if (this.tcpClients.size < this.limits.maxTcpClients) return true;
    for (const [other, c] of this.tcpClients) {
      if (c.busy || other.writableLength > 0) continue;
      this.tcpClients.delete(other);
      other.destroy();
      return true;
    }
    return false;
  }

  /** Who a TCP client counts as: its machine when it is one of this host's, else its address. */
  private tcpAsker(source: string): string {
    const asker = this.table.asker(source);
    return asker ? askerKey(asker) : source;
  }
}

/** One asking machine (its 6PN and IPv4 addresses are the same asker). */
function askerKey(m: DnsMachine): string {
  return `${m.app}\n${m.id}`;
}

/** A cached reply with this query's id and recursion-desired flag. */
function asReplyTo(query: Packet, cached: Buffer): Buffer {
  const reply = Buffer.from(cached);
  reply.writeUInt16BE(query.header.id, 0);
  reply[2] = ((reply[2] as number) & 0xfe) | (query.header.rd ? 1 : 0);
  return reply;
}

/** How large a UDP reply this query's client accepts: its EDNS payload size (capped), else 512. */
function udpLimit(query: Packet): number {
  const opt = query.additionals.find((r) => r.type === Packet.TYPE.EDNS);
  return opt ? Math.max(UDP_PLAIN_MAX, Math.min(opt.class, UDP_EDNS_MAX)) : UDP_PLAIN_MAX;
}

/** A TXT value as character-strings of at most 255 bytes (clients join them). */
function chunks(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += TXT_CHUNK) out.push(text.slice(i, i + TXT_CHUNK));
  return out.length > 0 ? out : [""];
}

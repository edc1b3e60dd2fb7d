import { randomInt } from "node:crypto";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";

/** A nameserver names outside `.internal` are forwarded to. */
export interface Upstream {
  address: string;
  port: number;
}

/** The nameservers of a resolv.conf text, except `skip` (the resolver itself: no loop). */
export function nameserversOf(resolvConf: string, skip: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of resolvConf.split("\n")) {
    const [keyword, address] = line.trim().split(/\s+/);
    if (keyword !== "nameserver" || !address) continue;
    const bare = address.replace(/%.*$/, "");
    if (isIP(bare) === 0 || bare === skip) continue;
    // A link-local nameserver keeps its zone: without it the kernel cannot tell the interface.
    out.push({ address, port: 53 });
  }
  return out;
}

/** The host's nameservers, from /etc/resolv.conf (none when it cannot be read). */
export function hostNameservers(skip: string): Upstream[] {
  try {
    return nameserversOf(readFileSync("/etc/resolv.conf", "utf8"), skip);
  } catch {
    return [];
  }
}

/**
 * Sends a query to each upstream in turn over UDP, from this process's namespace (where the host's
 * resolvers are reachable), and returns the first reply, with the query's own id; undefined when
 * none replies within `timeoutMs` each. Each try goes out under a random id of the resolver's own
 * (not the one the machine chose) from a socket connected to that upstream, so the kernel drops
 * datagrams from any other source and an off-path spoofer must guess a 16-bit id and a port.
 */
export async function forwardQuery(
  query: Buffer,
  upstreams: readonly Upstream[],
  timeoutMs: number,
): Promise<Buffer | undefined> {
  if (query.length < 12) return undefined;
  const clientId = query.readUInt16BE(0);
  for (const upstream of upstreams) {
    const reply = await askOne(query, upstream, timeoutMs);
    if (reply) {
      reply.writeUInt16BE(clientId, 0);
      return reply;
    }
  }
  return undefined;
}

function askOne(query: Buffer, upstream: Upstream, timeoutMs: number): Promise<Buffer | undefined> {
  const id = randomInt(0x10000);
  const ours = Buffer.from(query);
  ours.writeUInt16BE(id, 0);
  const socket = createSocket(isIP(upstream.address) === 6 ? "udp6" : "udp4");
  return new Promise<Buffer | undefined>((resolve) => {
    let finished = false;
    const done = (reply: Buffer | undefined) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    // Errors include the upstream's ICMP port unreachable, reported on a connected socket: next one.
    socket.on("error", () => done(undefined));
    socket.on("message", (reply) => {
      if (reply.length >= 12 && reply.readUInt16BE(0) === id) done(reply);
    });
    socket.connect(upstream.port, upstream.address, () => socket.send(ours));
  });
}

import { spawn } from "node:child_process";
import { IP } from "../driver/netns.js";

/** A query's outcome as seen from inside the asking namespace. */
export interface ProbeResult {
  /** The reply; undefined when none came within the timeout. */
  reply: Buffer | undefined;
  /** Round trip in milliseconds, measured in the asking namespace (no IPC in it). */
  ms: number;
}

export interface ProbeOptions {
  /** The namespace the queries leave from, as a machine's would. */
  netns: string;
  server: string;
  port?: number;
  /** The source address to send from (bound); the kernel's choice when none. */
  source?: string;
  transport?: "udp" | "tcp";
  /** Encoded DNS messages; each is sent with its index (mod 65536) as its id. */
  queries: Buffer[];
  /** UDP: send at this steady rate (queries per second) instead of one after the other. */
  perSecond?: number;
  timeoutMs?: number;
}

/**
 * Sends DNS queries from inside `netns`: what the resolver's tests and `pnpm bench network` use to
 * ask as a machine does. Runs a Node child under `ip netns exec` that sends each query (UDP paced
 * at `perSecond`, or one by one; TCP one connection per query) and reports every reply and its
 * round-trip time.
 */
export async function probeDns(o: ProbeOptions): Promise<ProbeResult[]> {
  const args = [
    o.server,
    String(o.port ?? 53),
    o.source ?? "",
    o.transport ?? "udp",
    String(o.perSecond ?? 0),
    String(o.timeoutMs ?? 2_000),
  ];
  const child = spawn(IP, ["netns", "exec", o.netns, process.execPath, "-e", PROBE, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin.end(`${o.queries.map((q) => q.toString("hex")).join("\n")}\n`);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  if (code !== 0) throw new Error(`DNS probe in ${o.netns} exited with ${code}: ${stderr.trim()}`);
  const results = JSON.parse(stdout) as Array<{ reply: string | null; ms: number }>;
  return results.map((r) => ({
    reply: r.reply === null ? undefined : Buffer.from(r.reply, "hex"),
    ms: r.ms,
  }));
}

/** The probe's child (CommonJS, for `node -e`): argv server port source transport perSecond timeoutMs; stdin hex queries. */
const PROBE = `
const dgram = require("node:dgram");
const net = require("node:net");
const [server, port, source, transport, perSecond, timeoutMs] = process.argv.slice(1);
let input = "";
process.stdin.on("data", (d) => { input += d; });
process.stdin.on("end", () => run(input.split("\\n").filter(Boolean).map((h) => Buffer.from(h, "hex"))));
const now = () => Number(process.hrtime.bigint()) / 1e6;
function withId(q, i) { const b = Buffer.from(q); b.writeUInt16BE(i & 0xffff, 0); return b; }
function finish(results) { process.stdout.write(JSON.stringify(results), () => process.exit(0)); }
function run(queries) {
  const results = queries.map(() => ({ reply: null, ms: Number(timeoutMs) }));
  if (queries.length === 0) return finish(results);
  if (transport === "tcp") return tcp(queries, results, 0);
  const socket = dgram.createSocket(net.isIPv6(server) ? "udp6" : "udp4");
  const sentAt = new Map();
  let pending = queries.length;
  socket.on("message", (msg) => {
    const i = [...sentAt.keys()].find((k) => (k & 0xffff) === msg.readUInt16BE(0));
    if (i === undefined) return;
    results[i] = { reply: msg.toString("hex"), ms: now() - sentAt.get(i) };
    sentAt.delete(i);
    if (--pending === 0) finish(results);
  });
  socket.bind(0, source || undefined, () => {
    const gap = Number(perSecond) > 0 ? 1000 / Number(perSecond) : 0;
    const start = now();
    let i = 0;
    const next = () => {
      while (i < queries.length && (gap === 0 ? sentAt.size === 0 : now() >= start + i * gap)) {
        const at = now();
        sentAt.set(i, at);
        const mine = i;
        setTimeout(() => { if (sentAt.delete(mine) && --pending === 0) finish(results); }, Number(timeoutMs));
        socket.send(withId(queries[i], i), Number(port), server);
        i++;
      }
      if (i < queries.length) setTimeout(next, gap === 0 ? 0 : Math.max(0, start + i * gap - now()));
    };
    next();
  });
}
function tcp(queries, results, i) {
  if (i === queries.length) return finish(results);
  const at = now();
  const socket = net.connect({ host: server, port: Number(port), ...(source ? { localAddress: source } : {}) });
  const q = withId(queries[i], i);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(q.length);
  let got = Buffer.alloc(0);
  let over = false;
  const done = () => { if (over) return; over = true; socket.destroy(); tcp(queries, results, i + 1); };
  socket.setTimeout(Number(timeoutMs), done);
  socket.on("error", done);
  socket.on("connect", () => socket.write(Buffer.concat([length, q])));
  socket.on("data", (d) => {
    got = Buffer.concat([got, d]);
    if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
      results[i] = { reply: got.subarray(2, 2 + got.readUInt16BE(0)).toString("hex"), ms: now() - at };
      done();
    }
  });
}
`;

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
  timeoutMs?: number;
}

/**
 * Sends DNS queries from inside `netns`, as a machine asks: a Node child under `ip netns exec` sends
 * them one after the other (TCP: one connection each) and reports every reply and its round trip.
 */
export async function probeDns(o: ProbeOptions): Promise<ProbeResult[]> {
  const args = [
    o.server,
    String(o.port ?? 53),
    o.source ?? "",
    o.transport ?? "udp",
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
  // A child that exits before reading its input makes this write fail with EPIPE: its exit code says why.
  child.stdin.on("error", () => undefined);
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

/** The probe's child (CommonJS, for `node -e`): argv server port source transport timeoutMs; stdin hex queries. */
const PROBE = `
const dgram = require("node:dgram");
const net = require("node:net");
const [server, port, source, transport, timeoutMs] = process.argv.slice(1);
let input = "";
process.stdin.on("data", (d) => { input += d; });
process.stdin.on("end", () => run(input.split("\\n").filter(Boolean).map((h) => Buffer.from(h, "hex"))));
const now = () => Number(process.hrtime.bigint()) / 1e6;
function withId(q, i) { const b = Buffer.from(q); b.writeUInt16BE(i & 0xffff, 0); return b; }
function run(queries) {
  const results = queries.map(() => ({ reply: null, ms: Number(timeoutMs) }));
  const finish = () => process.stdout.write(JSON.stringify(results), () => process.exit(0));
  const udp = transport === "udp" ? dgram.createSocket(net.isIPv6(server) ? "udp6" : "udp4") : undefined;
  const ask = (i) => {
    if (i === queries.length) return finish();
    const q = withId(queries[i], i);
    const at = now();
    let over = false;
    const next = (reply) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      if (reply) results[i] = { reply: reply.toString("hex"), ms: now() - at };
      ask(i + 1);
    };
    const timer = setTimeout(() => next(undefined), Number(timeoutMs));
    if (udp) {
      udp.removeAllListeners("message");
      udp.on("message", (msg) => { if (msg.readUInt16BE(0) === (i & 0xffff)) next(msg); });
      return udp.send(q, Number(port), server);
    }
    const socket = net.connect({ host: server, port: Number(port), ...(source ? { localAddress: source } : {}) });
    const length = Buffer.alloc(2);
    length.writeUInt16BE(q.length);
    let got = Buffer.alloc(0);
    socket.on("error", () => next(undefined));
    socket.on("connect", () => socket.write(Buffer.concat([length, q])));
    socket.on("data", (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        socket.destroy();
        next(got.subarray(2, 2 + got.readUInt16BE(0)));
      }
    });
  };
  if (udp) udp.bind(0, source || undefined, () => ask(0));
  else ask(0);
}
`;

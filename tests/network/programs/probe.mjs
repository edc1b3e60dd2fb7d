// Runs inside a machine (through exec) and prints one JSON object: what the machine's own resolver
// (/etc/resolv.conf) answers, which addresses it can connect to, what URLs return, and how fast an
// HTTP server answers under load and how fast a DNS server answers at a given rate. Every probe of
// a kind runs in parallel, each with its own timeout.
import { Resolver } from "node:dns/promises";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

const ask = JSON.parse(process.argv[2] ?? "{}");
const timeoutMs = ask.timeoutMs ?? 2000;

/** One DNS question: records (TXT strings joined), or the error code (ENOTFOUND is NXDOMAIN). */
async function resolve(resolver, { name, type }) {
  try {
    const records = await resolver.resolve(name, type);
    return { name, type, records: type === "TXT" ? records.map((r) => r.join("")) : records.sort() };
  } catch (error) {
    return { name, type, error: error.code ?? error.message };
  }
}

/** Whether a TCP connection to [host]:port is established within the timeout. */
function tryConnect({ host, port }) {
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (result) => {
      socket.destroy();
      done({ host, port, ...result });
    };
    socket.setTimeout(timeoutMs, () => finish({ connected: false, error: "timeout" }));
    socket.once("connect", () => finish({ connected: true }));
    socket.once("error", (error) => finish({ connected: false, error: error.code ?? error.message }));
  });
}

async function fetchText(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { url, status: res.status, body: await res.text() };
  } catch (error) {
    return { url, error: error.cause?.code ?? error.name };
  }
}

/** Polls `name` until `address` leaves its AAAA answer; says when, by this host's clock. */
async function waitGone(resolver, { name, address, pollMs = 10, forMs = 20000 }) {
  const present = async () =>
    (await resolve(resolver, { name, type: "AAAA" })).records?.includes(address) ?? false;
  if (!(await present())) return { error: `${address} is not in ${name} to begin with` };
  const deadline = Date.now() + forMs;
  while (Date.now() < deadline) {
    if (!(await present())) return { goneAt: Date.now() };
    await sleep(pollMs);
  }
  return { error: `${address} still in ${name} after ${forMs} ms` };
}

/** `connections` keep-alive clients GET `url` back to back for `durationMs`: requests per second. */
async function load({ url, connections = 16, durationMs = 3000 }) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const get = () =>
    new Promise((done, fail) => {
      request(url, { agent }, (res) => {
        res.resume();
        res.once("end", () => done(res.statusCode));
      })
        .once("error", fail)
        .end();
    });
  const end = Date.now() + durationMs;
  let requests = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) {
        await get();
        requests++;
      }
    }),
  );
  agent.destroy();
  return { requests, rps: (requests * 1000) / (Date.now() - started) };
}

/** A DNS query for `name` (AAAA, recursion desired) with message id `id`. */
function dnsQuery(id, name) {
  const labels = name.split(".").filter(Boolean);
  const question = Buffer.concat([
    ...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])),
    Buffer.from([0, 0, 28, 0, 1]),
  ]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, question]);
}

/**
 * Asks `server` for `name` at `rate` queries a second for `warmupMs` then `durationMs` over UDP,
 * one socket, and times each answer of the second part from its send: percentiles (a lost query at
 * the timeout), how many were lost or had no record. The warm-up runs in this process, so that both
 * ends' code is compiled before the timed part (a new process's first seconds are not steady state).
 */
async function dnsLoad({ server, name, rate = 1000, durationMs = 5000, warmupMs = 0 }) {
  const { createSocket } = await import("node:dgram");
  const socket = createSocket(server.includes(":") ? "udp6" : "udp4");
  const sentAt = new Map();
  const latencies = [];
  let empty = 0;
  let timed = false;
  socket.on("message", (msg) => {
    const id = msg.readUInt16BE(0);
    const at = sentAt.get(id);
    if (at === undefined) return;
    sentAt.delete(id);
    if (!timed) return;
    latencies.push(performance.now() - at);
    if ((msg.readUInt16BE(2) & 0xf) !== 0 || msg.readUInt16BE(6) === 0) empty++;
  });
  await new Promise((done) => socket.connect(53, server, done));
  let queries = 0; // ids run on across both parts, so a late warm-up answer matches no timed query
  const send = async (ms) => {
    const start = performance.now();
    let sent = 0;
    const total = Math.round((rate * ms) / 1000);
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
      for (; sent < due; sent++) {
        const id = queries++ % 65536;
        sentAt.set(id, performance.now());
        socket.send(dnsQuery(id, name));
      }
      await sleep(1);
    }
    return sent;
  };
  await send(warmupMs);
  sentAt.clear(); // a warm-up answer still on its way is not timed
  timed = true;
  const start = performance.now();
  const sent = await send(durationMs);
  await sleep(timeoutMs);
  socket.close();
  // A query never answered counts at the timeout: a lost answer is the worst latency, not none.
  const lost = sentAt.size;
  const sorted = [...latencies, ...Array(lost).fill(timeoutMs)].sort((x, y) => x - y);
  const at = (p) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
  return {
    sent,
    answered: latencies.length,
    lost,
    empty,
    seconds: (performance.now() - start - timeoutMs) / 1000,
    p50Ms: at(50),
    p99Ms: at(99),
    maxMs: sorted.at(-1),
  };
}

const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
const result = {
  resolve: await Promise.all((ask.resolve ?? []).map((q) => resolve(resolver, q))),
  connect: await Promise.all((ask.connect ?? []).map(tryConnect)),
  fetch: await Promise.all((ask.fetch ?? []).map(fetchText)),
  ...(ask.waitGone ? { waitGone: await waitGone(resolver, ask.waitGone) } : {}),
  ...(ask.load ? { load: await load(ask.load) } : {}),
  ...(ask.dnsLoad ? { dnsLoad: await dnsLoad(ask.dnsLoad) } : {}),
};
process.stdout.write(`${JSON.stringify(result)}\n`);

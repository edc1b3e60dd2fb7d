// Runs inside a machine (through exec) and prints one JSON object: what the machine's own resolver
// (/etc/resolv.conf) answers, which addresses it can connect to, what URLs return, and how fast an
// HTTP server answers under load. Every probe of a kind runs in parallel, each with its own timeout.
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

const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
const result = {
  resolve: await Promise.all((ask.resolve ?? []).map((q) => resolve(resolver, q))),
  connect: await Promise.all((ask.connect ?? []).map(tryConnect)),
  fetch: await Promise.all((ask.fetch ?? []).map(fetchText)),
  ...(ask.waitGone ? { waitGone: await waitGone(resolver, ask.waitGone) } : {}),
  ...(ask.load ? { load: await load(ask.load) } : {}),
};
process.stdout.write(`${JSON.stringify(result)}\n`);

// The event feed's delivery (issue 17, acceptance 6), against a real gateway process and the
// nats-server it starts (file storage, the platform's NATS users):
// - sse_events_per_s vs nats_events_per_s: RATE_EVENTS machine events appended to MACHINES as fast
//   as the event store takes them (RATE_MACHINES machines, one append in flight each), read at the
//   same time by one SSE client of `GET /v1/apps/{app}/events/stream` and by a raw ordered consumer
//   of EVENTS; each rate is the events it received over the time from the first append to its last
//   event;
// - fanout_1000_p99_ms: FANOUT_CLIENTS SSE clients of the same stream, then FANOUT_EVENTS events
//   appended one at a time (FANOUT_GAP_MS apart); a sample is the time from just before an append to
//   a client parsing that event, for every client and event. The clients share this process, so a
//   sample includes the wait for this process to get to its socket: an upper bound.
// Before measuring, events are appended until every client has one, so each is subscribed.
import { request } from "node:http";
import { loadavg } from "node:os";
import { machineAggregateId, machinesStream } from "@hangar/domain";
import { EVENTS_SUBJECT_PREFIX } from "@hangar/event-feed";
import { aggregateSubject } from "@hangar/eventstore";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { createParser } from "eventsource-parser";
import { startLoneGateway } from "../platform/lone-gateway.js";
import { percentile, printTable, round } from "./stats.js";

const APP = "eventsbench";
const RATE_MACHINES = 200;
const RATE_EVENTS = 20_000;
const FANOUT_CLIENTS = 1_000;
const FANOUT_EVENTS = 30;
const FANOUT_GAP_MS = 100;
/** How long every client may take to get one event before the bench gives up. */
const DELIVERY_TIMEOUT_MS = 30_000;

/** Time this process spent parsing the clients' frames: its own share of the fan-out latency. */
let clientBusyMs = 0;

/** One SSE client on a raw socket. */
interface SseClient {
  close(): void;
}

/** Opens an SSE client; `onEvent(subject, at)` for each event, `at` when this process parsed it. */
function openSse(url: string, token: string, onEvent: (subject: string, at: number) => void): SseClient {
  const parser = createParser({
    onEvent: (e) => onEvent((JSON.parse(e.data) as { subject: string }).subject, performance.now()),
  });
  const req = request(url, {
    agent: false,
    headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
  });
  req.on("response", (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      throw new Error(`GET ${url}: HTTP ${res.statusCode}`);
    }
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      const t = performance.now();
      parser.feed(chunk);
      clientBusyMs += performance.now() - t;
    });
  });
  // A client closed at the end errors with a reset: not a failure of the bench.
  req.on("error", () => {});
  req.end();
  return { close: () => req.destroy() };
}

async function until(what: string, done: () => boolean, tick?: () => Promise<void>): Promise<void> {
  const deadline = performance.now() + DELIVERY_TIMEOUT_MS;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${DELIVERY_TIMEOUT_MS} ms: ${what}`);
    if (tick) await tick();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export async function run(): Promise<Record<string, number>> {
  const gateway = await startLoneGateway("events-bench");
  const { nc, store, token } = gateway;
  const clients: SseClient[] = [];
  try {
    await gateway.post("/orgs", { slug: APP });
    await gateway.post("/apps", { app_name: APP, org_slug: APP });
    let commands = 0;
    /** Appends a machine-started event of machine `machine`; its public event's subject is returned. */
    const append = async (machine: string) => {
      const subject = machineAggregateId(APP, machine);
      await store.append(
        machinesStream,
        subject,
        [{ type: "MachineStarted", data: { hostId: "bench-host", pid: 4242 } }],
        { commandId: `bench-${++commands}`, expectedSeq: "any" },
      );
      return subject;
    };
    // Warm-up events are machine `warm`'s, and not counted.
    const warmSubject = machineAggregateId(APP, "warm");
    const streamUrl = `${gateway.apiUrl}/v1/apps/${APP}/events/stream`;
    /** Appends an event every 200 ms until `ready`: the clients are subscribed once each got one. */
    const warmUp = async (what: string, ready: () => boolean) => {
      let lastAt = 0;
      await until(what, ready, async () => {
        if (performance.now() - lastAt < 200) return;
        lastAt = performance.now();
        await append("warm");
      });
    };

    // --- one SSE client and a raw NATS subscriber, while RATE_EVENTS are appended ---
    let sseCount = 0;
    let sseLastAt = 0;
    let sseWarm = false;
    clients.push(
      openSse(streamUrl, token, (subject, at) => {
        if (subject === warmSubject) sseWarm = true;
        else if (++sseCount === RATE_EVENTS) sseLastAt = at;
      }),
    );
    const warmNatsSubject = `${EVENTS_SUBJECT_PREFIX}.${aggregateSubject(machinesStream, warmSubject)}`;
    let natsCount = 0;
    let natsLastAt = 0;
    let natsWarm = false;
    const ordered = await jetstream(nc).consumers.get("EVENTS", { deliver_policy: DeliverPolicy.New });
    const messages = await ordered.consume();
    void (async () => {
      for await (const m of messages) {
        if (m.subject === warmNatsSubject) natsWarm = true;
        else if (++natsCount === RATE_EVENTS) natsLastAt = performance.now();
      }
    })();
    await warmUp("the SSE client and the NATS subscriber get an event", () => sseWarm && natsWarm);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: RATE_MACHINES }, async (_, m) => {
        for (let i = m; i < RATE_EVENTS; i += RATE_MACHINES) await append(`m${m}`);
      }),
    );
    const appendedAt = performance.now();
    await until(`${RATE_EVENTS} events reach both readers`, () => sseLastAt > 0 && natsLastAt > 0);
    await messages.close();
    clients.pop()?.close();
    const appendPerS = RATE_EVENTS / ((appendedAt - t0) / 1000);
    const ssePerS = RATE_EVENTS / ((sseLastAt - t0) / 1000);
    const natsPerS = RATE_EVENTS / ((natsLastAt - t0) / 1000);

    // --- FANOUT_CLIENTS SSE clients, FANOUT_EVENTS events one at a time ---
    const received = new Map<string, number[]>();
    let warmClients = 0;
    for (let c = 0; c < FANOUT_CLIENTS; c++) {
      let warm = false;
      clients.push(
        openSse(streamUrl, token, (subject, at) => {
          if (subject === warmSubject) {
            if (!warm) warmClients++;
            warm = true;
            return;
          }
          const times = received.get(subject);
          if (times) times.push(at);
          else received.set(subject, [at]);
        }),
      );
    }
    await warmUp(`${FANOUT_CLIENTS} SSE clients get an event`, () => warmClients === FANOUT_CLIENTS);
    const latencies: number[] = [];
    const firsts: number[] = [];
    const spreads: number[] = [];
    const busyBefore = clientBusyMs;
    for (let e = 0; e < FANOUT_EVENTS; e++) {
      await new Promise((resolve) => setTimeout(resolve, FANOUT_GAP_MS));
      const sentAt = performance.now();
      const subject = await append(`f${e}`);
      await until(
        `${subject}'s event reaches all ${FANOUT_CLIENTS} clients (${received.get(subject)?.length ?? 0} have it)`,
        () => (received.get(subject)?.length ?? 0) >= FANOUT_CLIENTS,
      );
      const times = received.get(subject) ?? [];
      for (const at of times) latencies.push(at - sentAt);
      firsts.push(Math.min(...times) - sentAt);
      spreads.push(Math.max(...times) - Math.min(...times));
    }
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);

    printTable([
      [
        "load average (1 min)",
        round(loadavg()[0] ?? 0, 1),
        "of the machine during the run (2 cores: above 2, processes wait)",
      ],
      [
        "appended (event store)",
        round(appendPerS),
        `events/s: ${RATE_EVENTS} events, ${RATE_MACHINES} machines`,
      ],
      ["nats_events_per_s", round(natsPerS), "events/s to a raw ordered consumer of EVENTS"],
      ["sse_events_per_s", round(ssePerS), "events/s to one SSE client of the gateway"],
      ["sse / nats", round(ssePerS / natsPerS, 2), "target >= 0.5"],
      [
        "fanout_1000_p50_ms",
        round(p50, 1),
        `append to parsed, ${FANOUT_CLIENTS} clients x ${FANOUT_EVENTS} events`,
      ],
      ["fanout_1000_p99_ms", round(p99, 1), "target < 100"],
      ["fanout_1000_max_ms", round(Math.max(...latencies), 1), ""],
      ["fanout first client p50", round(percentile(firsts, 50), 1), "ms from append to the first client"],
      ["fanout spread p50", round(percentile(spreads, 50), 1), "ms from the first client to the last"],
      [
        "bench parsing per event",
        round((clientBusyMs - busyBefore) / FANOUT_EVENTS, 1),
        "ms this process spent parsing one event for all clients (part of the spread)",
      ],
    ]);
    return {
      sse_events_per_s: round(ssePerS),
      nats_events_per_s: round(natsPerS),
      fanout_1000_p99_ms: round(p99, 1),
    };
  } finally {
    for (const c of clients) c.close();
    await gateway.close();
  }
}

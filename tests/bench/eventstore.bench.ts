// The event store's speed, in one process against one nats-server it starts (file storage):
// - raw_publish_per_s vs append_per_s: the same bytes to 1,000 subjects, one write in flight per
//   subject (the shape of guarded appends, which must wait for their predecessor): plain async
//   JetStream publishing (JetStreamPublisher, no headers) vs EventStore.append over the same
//   publisher (encode, event-type header, msgID, expected sequence, trace span);
//   nats.js's own js.publish is shown for reference;
// - raw_read_per_s vs rebuild_events_per_s: 1,000,000 events (10,000 machines x 100) read by the
//   ordered reader without decoding vs replayed, decoded and folded into in-memory state;
// - full_load_p99_ms vs snapshot_load_p99_ms: loading one 100-event machine from its first event
//   vs from a KV snapshot plus the (empty) tail.
// Pairs run alternately, twice each; the best round of each is reported.
import {
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import {
  EventStore,
  encodeBatch,
  ensureStream,
  jsonSnapshots,
  loadAggregate,
  OrderedReader,
  prefixedStream,
  replay,
  SnapshotStore,
} from "@hangar/eventstore";
import { startNatsServer } from "@hangar/testkit";
import { connect } from "@nats-io/transport-node";
import { percentile, printTable, round } from "./stats.js";

const WRITE_AGGREGATES = 1_000;
const WRITES_PER_AGGREGATE = 60;
const REBUILD_AGGREGATES = 10_000;
const EVENTS_PER_AGGREGATE = 100;
const LOAD_SAMPLES = 300;

function lifecycle(app: string, machineId: string): MachineEvent[] {
  const events: MachineEvent[] = [
    {
      type: "MachineCreated",
      data: {
        machineId,
        app,
        name: `${machineId}-name`,
        region: "local",
        instanceId: `${machineId}-i1`,
        configJson: JSON.stringify({ image: "registry.local/hello:1", guest: { cpus: 1, memory_mb: 256 } }),
        skipLaunch: false,
      },
    },
  ];
  const cycle: MachineEvent[] = [
    { type: "MachineStartRequested", data: { instanceId: `${machineId}-i1` } },
    { type: "MachineStarted", data: { hostId: "host-1", pid: 4242 } },
    { type: "MachineStopRequested", data: { signal: "SIGINT", timeoutS: 5 } },
    { type: "MachineExited", data: { exitCode: 0, signal: "SIGINT", requested: true } },
  ];
  for (let i = 0; events.length < EVENTS_PER_AGGREGATE; i++)
    events.push(cycle[i % cycle.length] as MachineEvent);
  return events;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

export async function run(): Promise<Record<string, number>> {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url, maxPingOut: 100 });
  try {
    const store = await EventStore.connect(nc);
    const { js, jsm } = store;

    // --- writes ---
    const sample: MachineEvent = { type: "MachineStarted", data: { hostId: "host-1", pid: 4242 } };
    const bytes = encodeBatch(machinesStream, "app.m", [sample], { commandId: "c" });
    let round_ = 0;
    const rawPublish = async (
      publish: (subject: string) => Promise<unknown>,
      count = WRITES_PER_AGGREGATE,
    ) => {
      const s = prefixedStream(machinesStream, `raw${++round_}`);
      await ensureStream(jsm, s);
      return timed(async () => {
        await Promise.all(
          Array.from({ length: WRITE_AGGREGATES }, async (_, a) => {
            for (let i = 0; i < count; i++) await publish(`${s.subjectPrefix}.app.m${a}`);
          }),
        );
      });
    };
    const viaPublisher = (subject: string) => store.publisher.publish(subject, bytes);
    const guardedAppend = async () => {
      const s = prefixedStream(machinesStream, `app${++round_}`);
      await ensureStream(jsm, s);
      return timed(async () => {
        await Promise.all(
          Array.from({ length: WRITE_AGGREGATES }, async (_, a) => {
            let seq = 0;
            for (let i = 0; i < WRITES_PER_AGGREGATE; i++) {
              const ack = await store.append(s, `app.m${a}`, [sample], {
                expectedSeq: seq,
                commandId: `c${a}-${i}`,
              });
              seq = ack.seq;
            }
          }),
        );
      });
    };
    const writes = WRITE_AGGREGATES * WRITES_PER_AGGREGATE;
    const publishTimes: number[] = [];
    const appendTimes: number[] = [];
    for (let r = 0; r < 3; r++) {
      publishTimes.push(await rawPublish(viaPublisher));
      appendTimes.push(await guardedAppend());
    }
    const rawPublishPerS = writes / Math.min(...publishTimes);
    const appendPerS = writes / Math.min(...appendTimes);
    const natsJsPublishPerS =
      (WRITE_AGGREGATES * 10) / (await rawPublish((subject) => js.publish(subject, bytes), 10));

    // --- the 1,000,000-event stream ---
    const stream = prefixedStream(machinesStream, "rebuild");
    await ensureStream(jsm, stream);
    const fillSeconds = await timed(async () => {
      const WINDOW = 4_000;
      let inFlight: Promise<unknown>[] = [];
      // Round-robin over machines, so each machine's events are spread over the whole stream.
      const lifecycles = Array.from({ length: REBUILD_AGGREGATES }, (_, a) =>
        lifecycle(`app${a % 100}`, `m${a}`),
      );
      for (let e = 0; e < EVENTS_PER_AGGREGATE; e++) {
        for (let a = 0; a < REBUILD_AGGREGATES; a++) {
          const id = machineAggregateId(`app${a % 100}`, `m${a}`);
          const event = lifecycles[a]?.[e] as MachineEvent;
          const data = encodeBatch(stream, id, [event], { commandId: `fill-${a}-${e}` });
          inFlight.push(store.publisher.publish(`${stream.subjectPrefix}.${id}`, data));
          if (inFlight.length >= WINDOW) {
            await Promise.all(inFlight);
            inFlight = [];
          }
        }
      }
      await Promise.all(inFlight);
    });
    const total = REBUILD_AGGREGATES * EVENTS_PER_AGGREGATE;

    const rawRead = () =>
      timed(async () => {
        let count = 0;
        let reader: OrderedReader | undefined;
        await new Promise<void>((resolve, reject) => {
          OrderedReader.start(nc, jsm, {
            stream: stream.name,
            filter: `${stream.subjectPrefix}.>`,
            onMessage: (m) => {
              count++;
              if (m.pending === 0) resolve();
            },
            onError: reject,
          }).then((r) => {
            reader = r;
          }, reject);
        });
        await reader?.stop();
        if (count !== total) throw new Error(`raw read saw ${count} of ${total} messages`);
      });
    let peakRss = 0;
    const rebuild = () =>
      timed(async () => {
        const states = new Map<string, MachineState>();
        const sampler = setInterval(() => {
          peakRss = Math.max(peakRss, process.memoryUsage.rss());
        }, 20);
        try {
          const r = await replay(store, stream, {
            onEvents(events, aggregateId) {
              let s = states.get(aggregateId) ?? machineDecider.initialState();
              for (const e of events) s = machineDecider.evolve(s, e.event);
              states.set(aggregateId, s);
            },
          });
          const done = await r.caughtUp;
          await r.stop();
          if (done.events !== total || states.size !== REBUILD_AGGREGATES) {
            throw new Error(`rebuild saw ${done.events} events of ${states.size} machines`);
          }
          if (states.get(machineAggregateId("app7", "m7"))?.status !== "stopping")
            throw new Error("wrong state");
        } finally {
          clearInterval(sampler);
          peakRss = Math.max(peakRss, process.memoryUsage.rss());
        }
      });
    const readTimes: number[] = [];
    const rebuildTimes: number[] = [];
    for (let r = 0; r < 2; r++) {
      readTimes.push(await rawRead());
      rebuildTimes.push(await rebuild());
    }
    const rawReadPerS = total / Math.min(...readTimes);
    const rebuildPerS = total / Math.min(...rebuildTimes);

    // --- loading one aggregate ---
    const ids = Array.from({ length: LOAD_SAMPLES }, (_, i) => {
      const a = (i * 7919) % REBUILD_AGGREGATES;
      return machineAggregateId(`app${a % 100}`, `m${a}`);
    });
    const snapshots = await SnapshotStore.open<MachineState>(nc, stream, jsonSnapshots());
    const fullLoads: number[] = [];
    for (const id of ids) {
      const t0 = performance.now();
      const loaded = await loadAggregate(store, stream, machineDecider, id);
      fullLoads.push(performance.now() - t0);
      if (loaded.messagesSinceSnapshot !== EVENTS_PER_AGGREGATE)
        throw new Error(`${id}: ${loaded.messagesSinceSnapshot}`);
      await snapshots.save(id, { seq: loaded.seq, state: loaded.state, commands: [...loaded.commands] });
    }
    const snapshotLoads: number[] = [];
    for (const id of ids) {
      const t0 = performance.now();
      const loaded = await loadAggregate(store, stream, machineDecider, id, snapshots);
      snapshotLoads.push(performance.now() - t0);
      if (loaded.messagesSinceSnapshot !== 0) throw new Error(`${id} did not load from its snapshot`);
    }

    const result = {
      raw_publish_per_s: round(rawPublishPerS),
      append_per_s: round(appendPerS),
      raw_read_per_s: round(rawReadPerS),
      rebuild_events_per_s: round(rebuildPerS),
      rebuild_peak_rss_mb: round(peakRss / 2 ** 20),
      full_load_p99_ms: round(percentile(fullLoads, 99), 2),
      snapshot_load_p99_ms: round(percentile(snapshotLoads, 99), 2),
    };
    printTable([
      [
        "raw publish",
        result.raw_publish_per_s,
        `msgs/s (${writes} to ${WRITE_AGGREGATES} subjects, best of 3)`,
      ],
      ["nats.js js.publish", round(natsJsPublishPerS), "msgs/s, same shape, for reference (not a target)"],
      [
        "guarded append",
        result.append_per_s,
        `appends/s (ratio ${round(appendPerS / rawPublishPerS, 2)}, target >= 0.8)`,
      ],
      ["fill (setup)", round(total / fillSeconds), `msgs/s, ${total} events written with a window of 4000`],
      ["raw read", result.raw_read_per_s, "msgs/s, ordered reader, no decoding (best of 2)"],
      [
        "rebuild",
        result.rebuild_events_per_s,
        `events/s decoded and folded (ratio ${round(rebuildPerS / rawReadPerS, 2)}; targets >= 200000 and >= 0.8)`,
      ],
      ["rebuild peak RSS", result.rebuild_peak_rss_mb, "MiB, whole process"],
      [
        "full load p99",
        result.full_load_p99_ms,
        `ms, one ${EVENTS_PER_AGGREGATE}-event machine, ${LOAD_SAMPLES} loads`,
      ],
      ["snapshot load p99", result.snapshot_load_p99_ms, "ms, snapshot + empty tail (target < 5)"],
    ]);
    return result;
  } finally {
    await nc.close();
    await server.stop();
  }
}

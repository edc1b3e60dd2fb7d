// The event store's speed, in one process against one nats-server it starts (file storage):
// - raw_publish_per_s vs append_per_s: the same bytes to 1,000 subjects, one write in flight per
//   subject (the shape of guarded appends, which must wait for their predecessor): plain async
//   JetStream publishing (JetStreamPublisher, no headers) vs EventStore.append over the same
//   publisher (encode, msgID, expected sequence, trace span). In between, the append taken apart:
//   the raw publish plus a Nats-Msg-Id (msgid_publish_per_s), plus the expected last subject
//   sequence too (guarded_publish_per_s), and this process's CPU per write for raw and append;
//   nats.js's own js.publish is shown for reference;
// - raw_read_per_s vs rebuild_events_per_s: 1,000,000 events (10,000 machines x 100) read by the
//   ordered reader without decoding vs replayed, decoded and folded into in-memory state, by the one
//   ordered reader replay uses (rebuild_single_reader_events_per_s is that same figure, named for
//   issue 20). raw_read_two_readers_per_s reads the stream with two ordered readers at once over its
//   two halves: whether a second consumer reads faster than one, which partitioned replays need;
// - full_load_p99_ms vs snapshot_load_p99_ms: loading one 100-event machine from its first event
//   vs from a KV snapshot plus the (empty) tail.
// Variants run alternately (writes three rounds, reads two); the best round of each is reported.
import {
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import {
  type AggregateStream,
  EventStore,
  encodeBatch,
  ensureStream,
  eventTypesHeaders,
  jsonSnapshots,
  loadAggregate,
  messageIdFor,
  OrderedReader,
  prefixedStream,
  SnapshotStore,
} from "@hangar/eventstore";
import { startNatsServer } from "@hangar/testkit";
import { connect, headers } from "@nats-io/transport-node";
import { rebuildMachines } from "./machine-rebuild.js";
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
    // One shape for every write variant: 1,000 subjects, one write in flight per subject, each
    // write told the sequence its predecessor got. Returns wall seconds and this process's CPU.
    const writeRound = async (
      write: (s: AggregateStream<MachineEvent>, a: number, i: number, prevSeq: number) => Promise<number>,
      count = WRITES_PER_AGGREGATE,
    ) => {
      const s = prefixedStream(machinesStream, `w${++round_}`);
      await ensureStream(jsm, s);
      const cpu0 = process.cpuUsage();
      const seconds = await timed(async () => {
        await Promise.all(
          Array.from({ length: WRITE_AGGREGATES }, async (_, a) => {
            let seq = 0;
            for (let i = 0; i < count; i++) seq = await write(s, a, i, seq);
          }),
        );
      });
      const cpu = process.cpuUsage(cpu0);
      return { seconds, cpuUsPerWrite: (cpu.user + cpu.system) / (WRITE_AGGREGATES * count) };
    };
    const subjectOf = (s: AggregateStream<MachineEvent>, a: number) => `${s.subjectPrefix}.app.m${a}`;
    // The guarded append taken apart: what each of its headers costs over the same raw publish.
    const variants: Record<string, Parameters<typeof writeRound>[0]> = {
      raw: async (s, a) => (await store.publisher.publish(subjectOf(s, a), bytes)).seq,
      msgId: async (s, a, i) => {
        const h = headers();
        h.append("Nats-Msg-Id", messageIdFor(`c${a}-${i}`, `app.m${a}`));
        return (await store.publisher.publish(subjectOf(s, a), bytes, h)).seq;
      },
      msgIdExpected: async (s, a, i, prevSeq) => {
        const h = headers();
        h.append("Nats-Msg-Id", messageIdFor(`c${a}-${i}`, `app.m${a}`));
        h.append("Nats-Expected-Last-Subject-Sequence", String(prevSeq));
        return (await store.publisher.publish(subjectOf(s, a), bytes, h)).seq;
      },
      append: async (s, a, i, prevSeq) =>
        (await store.append(s, `app.m${a}`, [sample], { expectedSeq: prevSeq, commandId: `c${a}-${i}` })).seq,
    };
    const writeRuns: Record<string, { seconds: number; cpuUsPerWrite: number }[]> = {};
    for (let r = 0; r < 3; r++) {
      for (const [name, write] of Object.entries(variants)) {
        const runs = writeRuns[name] ?? [];
        runs.push(await writeRound(write));
        writeRuns[name] = runs;
      }
    }
    const writes = WRITE_AGGREGATES * WRITES_PER_AGGREGATE;
    // The best round's rate, and the CPU per write of that same round.
    const best = (name: string) => {
      const runs = writeRuns[name] ?? [];
      const fastest = runs.reduce((x, y) => (y.seconds < x.seconds ? y : x));
      return { perS: writes / fastest.seconds, cpuUs: fastest.cpuUsPerWrite };
    };
    const rawPublish = best("raw");
    const msgIdPublish = best("msgId");
    const guardedPublish = best("msgIdExpected");
    const appendBest = best("append");
    const rawPublishPerS = rawPublish.perS;
    const appendPerS = appendBest.perS;
    const natsJsPublishPerS =
      (WRITE_AGGREGATES * 10) /
      (await writeRound(async (s, a) => (await js.publish(subjectOf(s, a), bytes)).seq, 10)).seconds;

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
          inFlight.push(
            store.publisher.publish(`${stream.subjectPrefix}.${id}`, data, eventTypesHeaders([event])),
          );
          if (inFlight.length >= WINDOW) {
            await Promise.all(inFlight);
            inFlight = [];
          }
        }
      }
      await Promise.all(inFlight);
    });
    const total = REBUILD_AGGREGATES * EVENTS_PER_AGGREGATE;

    // Counts the stream's messages with `readers` ordered readers at once, each over its own
    // consecutive range of sequences (one reader: the whole stream), without decoding.
    const rawRead = (readers: number) =>
      timed(async () => {
        const size = Math.ceil(total / readers);
        const counts = await Promise.all(
          Array.from({ length: readers }, (_, k) => {
            const afterSeq = k * size;
            const lastSeq = Math.min(total, afterSeq + size);
            return new Promise<number>((resolve, reject) => {
              let count = 0;
              let reader: OrderedReader | undefined;
              let done = false;
              OrderedReader.start(nc, jsm, {
                stream: stream.name,
                filter: `${stream.subjectPrefix}.>`,
                afterSeq,
                onMessage: (m) => {
                  if (done) return;
                  count++;
                  if (m.seq >= lastSeq) {
                    done = true;
                    void reader?.stop();
                    resolve(count);
                  }
                },
                onError: reject,
              }).then((r) => {
                reader = r;
                if (done) void r.stop();
              }, reject);
            });
          }),
        );
        const count = counts.reduce((a, b) => a + b, 0);
        if (count !== total) throw new Error(`raw read saw ${count} of ${total} messages`);
      });
    let peakRss = 0;
    const rebuild = () =>
      timed(async () => {
        const sampler = setInterval(() => {
          peakRss = Math.max(peakRss, process.memoryUsage.rss());
        }, 20);
        try {
          const { events, states } = await rebuildMachines(store, stream);
          if (events !== total || states.size !== REBUILD_AGGREGATES) {
            throw new Error(`rebuild saw ${events} events of ${states.size} machines`);
          }
          if (states.get(machineAggregateId("app7", "m7"))?.status !== "stopping")
            throw new Error("wrong state");
        } finally {
          clearInterval(sampler);
          peakRss = Math.max(peakRss, process.memoryUsage.rss());
        }
      });
    const readTimes: number[] = [];
    const twoReaderTimes: number[] = [];
    const rebuildTimes: number[] = [];
    for (let r = 0; r < 2; r++) {
      readTimes.push(await rawRead(1));
      rebuildTimes.push(await rebuild());
      twoReaderTimes.push(await rawRead(2));
    }
    const rawReadPerS = total / Math.min(...readTimes);
    const twoReadersPerS = total / Math.min(...twoReaderTimes);
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
    // Each load is followed by its two parts apart (a snapshot load sends both at once), the KV get
    // and the last sequence, so all three series are sampled under the same conditions.
    const snapshotLoads: number[] = [];
    const kvGets: number[] = [];
    const lastSeqGets: number[] = [];
    for (const id of ids) {
      let t0 = performance.now();
      const loaded = await loadAggregate(store, stream, machineDecider, id, snapshots);
      snapshotLoads.push(performance.now() - t0);
      if (loaded.messagesSinceSnapshot !== 0) throw new Error(`${id} did not load from its snapshot`);
      t0 = performance.now();
      await snapshots.load(id);
      kvGets.push(performance.now() - t0);
      t0 = performance.now();
      await store.lastSequence(stream, id);
      lastSeqGets.push(performance.now() - t0);
    }

    const result = {
      raw_publish_per_s: round(rawPublishPerS),
      msgid_publish_per_s: round(msgIdPublish.perS),
      guarded_publish_per_s: round(guardedPublish.perS),
      append_per_s: round(appendPerS),
      raw_publish_cpu_us: round(rawPublish.cpuUs, 1),
      append_cpu_us: round(appendBest.cpuUs, 1),
      raw_read_per_s: round(rawReadPerS),
      raw_read_two_readers_per_s: round(twoReadersPerS),
      rebuild_events_per_s: round(rebuildPerS),
      rebuild_single_reader_events_per_s: round(rebuildPerS),
      rebuild_peak_rss_mb: round(peakRss / 2 ** 20),
      full_load_p99_ms: round(percentile(fullLoads, 99), 2),
      snapshot_load_p99_ms: round(percentile(snapshotLoads, 99), 2),
    };
    printTable([
      [
        "raw publish",
        result.raw_publish_per_s,
        `msgs/s (${writes} to ${WRITE_AGGREGATES} subjects, best of 3, variants alternating)`,
      ],
      ["nats.js js.publish", round(natsJsPublishPerS), "msgs/s, same shape, for reference (not a target)"],
      [
        "+ Nats-Msg-Id",
        result.msgid_publish_per_s,
        `msgs/s (ratio ${round(msgIdPublish.perS / rawPublishPerS, 2)}): the server's duplicate check`,
      ],
      [
        "+ expected seq",
        result.guarded_publish_per_s,
        `msgs/s (ratio ${round(guardedPublish.perS / rawPublishPerS, 2)}): and its last-subject-sequence check`,
      ],
      [
        "guarded append",
        result.append_per_s,
        `appends/s (ratio ${round(appendPerS / rawPublishPerS, 2)}, target >= 0.6): EventStore.append, all of it`,
      ],
      [
        "client CPU",
        `${result.raw_publish_cpu_us} / ${result.append_cpu_us}`,
        `us per write, raw publish / append (this process; the rest of a write is the server's)`,
      ],
      ["fill (setup)", round(total / fillSeconds), `msgs/s, ${total} events written with a window of 4000`],
      ["raw read", result.raw_read_per_s, "msgs/s, ordered reader, no decoding (best of 2)"],
      [
        "raw read, 2 readers",
        result.raw_read_two_readers_per_s,
        `msgs/s, two readers at once over the two halves (ratio ${round(twoReadersPerS / rawReadPerS, 2)})`,
      ],
      [
        "rebuild",
        result.rebuild_events_per_s,
        `events/s decoded and folded by one reader (ratio ${round(rebuildPerS / rawReadPerS, 2)}; targets >= 200000 and >= 0.8)`,
      ],
      ["rebuild peak RSS", result.rebuild_peak_rss_mb, "MiB, whole process"],
      [
        "full load p99",
        result.full_load_p99_ms,
        `ms, one ${EVENTS_PER_AGGREGATE}-event machine, ${LOAD_SAMPLES} loads`,
      ],
      [
        "snapshot load p99",
        result.snapshot_load_p99_ms,
        "ms, snapshot + empty tail (target < 5): two direct gets at once, no consumer",
      ],
      [
        "  KV get p99",
        round(percentile(kvGets, 99), 2),
        "ms, the snapshot's direct get and JSON decode alone",
      ],
      [
        "  last seq p99",
        round(percentile(lastSeqGets, 99), 2),
        "ms, the direct get of the last sequence alone",
      ],
    ]);
    return result;
  } finally {
    await nc.close();
    await server.stop();
  }
}

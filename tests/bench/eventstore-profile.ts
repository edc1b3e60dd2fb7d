// A CPU profile of the event store's hot paths, for docs/profiles/eventstore.md:
//   node --conditions=source --import tsx tests/bench/eventstore-profile.ts <mode>...
// modes: read (the ordered reader, counting only), rebuild (replay + machine fold), append
// (guarded appends, 1,000 machines x 30). It fills a stream of MACHINES (default 3,000) machines x
// 100 events, runs each mode under the inspector's CPU profiler, writes /tmp/eventstore-<mode>.cpuprofile
// (open it in Chrome DevTools or speedscope) and prints the functions with the most self time.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { type MachineEvent, machineAggregateId, machinesStream } from "@hangar/domain";
import {
  EventStore,
  encodeBatch,
  ensureStream,
  eventTypesHeaders,
  OrderedReader,
  prefixedStream,
} from "@hangar/eventstore";
import { startNatsServer } from "@hangar/testkit";
import { connect } from "@nats-io/transport-node";
import { rebuildMachines } from "./machine-rebuild.js";

const MACHINES = Number(process.env.MACHINES ?? 3_000);
const EVENTS = 100;
const APPENDS = 30;

const server = await startNatsServer();
const nc = await connect({ servers: server.url, maxPingOut: 100 });
const store = await EventStore.connect(nc);
const stream = prefixedStream(machinesStream, "prof");
await ensureStream(store.jsm, stream);
const started: MachineEvent = { type: "MachineStarted", data: { hostId: "host-1", pid: 4242 } };
const cycle: MachineEvent[] = [
  { type: "MachineStartRequested", data: { instanceId: "i1" } },
  started,
  { type: "MachineStopRequested", data: { signal: "SIGINT", timeoutS: 5 } },
  { type: "MachineExited", data: { exitCode: 0, signal: "SIGINT", requested: true } },
];
let inFlight: Promise<unknown>[] = [];
for (let e = 0; e < EVENTS; e++) {
  for (let a = 0; a < MACHINES; a++) {
    const app = `app${a % 100}`;
    const id = machineAggregateId(app, `m${a}`);
    const event: MachineEvent =
      e === 0
        ? {
            type: "MachineCreated",
            data: { machineId: `m${a}`, app, name: "n", region: "local", instanceId: "i1", configJson: "{}" },
          }
        : (cycle[(e - 1) % cycle.length] as MachineEvent);
    const data = encodeBatch(stream, id, [event], { commandId: `f${a}-${e}` });
    inFlight.push(store.publisher.publish(`${stream.subjectPrefix}.${id}`, data, eventTypesHeaders([event])));
    if (inFlight.length >= 4_000) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
}
await Promise.all(inFlight);
const total = MACHINES * EVENTS;

const modes: Record<string, () => Promise<number>> = {
  async read() {
    let reader: OrderedReader | undefined;
    await new Promise<void>((resolve, reject) => {
      OrderedReader.start(nc, store.jsm, {
        stream: stream.name,
        filter: `${stream.subjectPrefix}.>`,
        onMessage: (m) => {
          if (m.pending === 0) resolve();
        },
        onError: reject,
      }).then((r) => {
        reader = r;
      }, reject);
    });
    await reader?.stop();
    return total;
  },
  async rebuild() {
    return (await rebuildMachines(store, stream)).events;
  },
  async append() {
    const s = prefixedStream(machinesStream, `ap${Date.now()}`);
    await ensureStream(store.jsm, s);
    await Promise.all(
      Array.from({ length: 1_000 }, async (_, a) => {
        let seq = 0;
        for (let i = 0; i < APPENDS; i++)
          seq = (await store.append(s, `app.m${a}`, [started], { expectedSeq: seq, commandId: `c${a}-${i}` }))
            .seq;
      }),
    );
    return 1_000 * APPENDS;
  },
};

const session = new Session();
session.connect();
await session.post("Profiler.enable");
for (const name of process.argv.slice(2)) {
  const mode = modes[name];
  if (!mode) throw new Error(`unknown mode ${name} (modes: ${Object.keys(modes).join(", ")})`);
  await session.post("Profiler.start");
  const t0 = performance.now();
  const count = await mode();
  const seconds = (performance.now() - t0) / 1000;
  const { profile } = await session.post("Profiler.stop");
  const file = `/tmp/eventstore-${name}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  console.log(`${name}: ${Math.round(count / seconds)}/s, profile in ${file}; self time:`);
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const deltas = profile.timeDeltas ?? [];
  (profile.samples ?? []).forEach((id, i) => {
    const frame = nodes.get(id)?.callFrame;
    if (!frame) return;
    const key = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").slice(-2).join("/")}`;
    self.set(key, (self.get(key) ?? 0) + (deltas[i] ?? 0));
  });
  const sum = [...self.values()].reduce((a, b) => a + b, 0);
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15))
    console.log(`  ${((100 * us) / sum).toFixed(1).padStart(5)} %  ${key}`);
}
await nc.close();
await server.stop();

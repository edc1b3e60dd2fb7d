// One placement instance for `pnpm bench placement`: the real Placement class in a process of its own,
// on the bench's nats-server (argv[2]). Prints one line when it serves requests; answers
// bench.placement.cpu.<argv[3]> with its CPU time and counts. With HANGAR_BENCH_CPU_PROF=<dir>, such a
// request with "start" starts a CPU profile and one with "stop" writes it to <dir>.
import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import { EventStore } from "@hangar/eventstore";
import { createLogger } from "@hangar/telemetry";
import { connect } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { Placement } from "../../services/placement/src/placement.js";

const [url, name] = process.argv.slice(2);
if (!url || !name) throw new Error("usage: placement-instance.ts <nats url> <name>");
const nc = await connect({ servers: url, name: `placement-${name}`, maxPingOut: 100 });
const registry = new Registry();
const placement = await Placement.start({
  nc,
  store: await EventStore.connect(nc),
  logger: createLogger(`placement-${name}`, { level: "warn" }),
  registry,
  // The simulation creates no machines: the reservations are kept, not released as orphans.
  orphanAfterMs: 3_600_000,
});

/** A counter's total over its labels. */
async function total(metric: string): Promise<number> {
  const m = (await registry.getSingleMetric(metric)?.get())?.values ?? [];
  return m.reduce((sum, v) => sum + v.value, 0);
}

const profileDir = process.env.HANGAR_BENCH_CPU_PROF;
let profiler: Session | undefined;
let profiling: Promise<void> = Promise.resolve();

/** Starts the CPU profile, or stops it and writes it out. */
async function profile(action: string): Promise<void> {
  if (!profileDir) return;
  if (action === "start") {
    profiler = new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.start");
    return;
  }
  if (action !== "stop" || !profiler) return;
  const { profile } = await profiler.post("Profiler.stop");
  await writeFile(join(profileDir, `placement-${name}.cpuprofile`), JSON.stringify(profile));
}

nc.subscribe(`bench.placement.cpu.${name}`, {
  callback: (_err, msg) => {
    const cpu = process.cpuUsage();
    const action = msg.string();
    profiling = profiling.then(() => profile(action));
    void Promise.all([total("hangar_placements_total"), total("hangar_placement_conflicts_total")]).then(
      ([placed, conflicts]) =>
        msg.respond(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, placed, conflicts })),
    );
  },
});

process.once("SIGTERM", () => {
  void profiling
    .then(() => placement.stop())
    .then(() => nc.drain())
    .finally(() => process.exit(0));
});
// The subscription reaches the server before the bench is told to ask it: a request sent while the
// SUB was still in this client's buffer had no responder (a run failed so, "no responders").
await nc.flush();
console.log(JSON.stringify({ ready: name, pid: process.pid }));

// Placement at scale, simulated: one nats-server with JetStream (file storage in a temp dir), a
// simulator that registers HOSTS hosts as the host agent does (RegisterHost on the HOSTS stream, then
// a heartbeat on hosts.heartbeat.<id> every second from the agent's own HostHeartbeats; no machines
// run), INSTANCES placement processes (the real Placement class, each a process of its own, sharing
// the requests through their queue group), and MACHINES PlaceRequests sent on the subject the
// gateway uses, CONCURRENCY in flight. Each reservation is a HostMachineReserved appended with the
// host's expected sequence.
//
// Afterwards the HOSTS stream is read back and checked by tests/replicas/invariants.ts: every
// reservation and release folded against its host's capacity (overcommitted_hosts), no machine
// reserved twice or on two hosts (double_placements), and every answer matches the log.
//
// placements_per_s: answered placements over the wall time of the placing phase; p99_ms: request
// latency. CPU per placement is shown per process (each placement instance, the nats-server, this
// process: the simulator and the clients), from their CPU time over the placing phase, next to what
// each uses at rest (heartbeats only, measured for 5 s before placing). cpu_us_per_placement is the
// CPU all of them used per placement: 2 cores place at most 2,000,000 / it a second.
//
// HANGAR_BENCH_PLACEMENT_{HOSTS,MACHINES,INSTANCES,CONCURRENCY} change the scale;
// HANGAR_BENCH_CPU_PROF=<dir> writes a CPU profile of each placement process over the placing phase
// into <dir> (placement-p<i>.cpuprofile).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { appsStream, hostDecider, hostsStream, machinesStream, volumesStream } from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import { CommandError, type PlaceRequest, type PlaceResult, sendCommand, subjects } from "@hangar/service";
import { startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { HostHeartbeats } from "../../services/host-agent/src/heartbeat.js";
import { readStream } from "../replicas/harness.js";
import { checkInvariants } from "../replicas/invariants.js";
import { percentile, printTable, round } from "./stats.js";

const env = (name: string, fallback: number) =>
  Number(process.env[`HANGAR_BENCH_PLACEMENT_${name}`] ?? fallback);
const HOSTS = env("HOSTS", 10_000);
const MACHINES = env("MACHINES", 100_000);
const INSTANCES = env("INSTANCES", 3);
const CONCURRENCY = env("CONCURRENCY", 256);
/** How long the heartbeats alone are measured before placing. */
const REST_MS = 5_000;
const REGIONS = ["ord", "iad", "fra", "syd"];
/** Two host sizes, alternating: a 16-core 32 GB host and a 32-core 64 GB one. */
const HOST_SIZES = [
  { cpus: 16, memoryMb: 32_768 },
  { cpus: 32, memoryMb: 65_536 },
];
/** Machine sizes by share of machines: Fly's shared-cpu-1x at 256 MB and 1 GB, 2x, performance-4x. */
const GUESTS = [
  { share: 0.6, cpus: 1, memoryMb: 256 },
  { share: 0.25, cpus: 1, memoryMb: 1_024 },
  { share: 0.1, cpus: 2, memoryMb: 2_048 },
  { share: 0.05, cpus: 4, memoryMb: 8_192 },
];

interface Instance {
  name: string;
  pid: number;
  stop(): Promise<void>;
}

/** A placement process on the server; resolves once it serves requests. */
async function startInstance(url: string, name: string): Promise<Instance> {
  const child = spawn(
    process.execPath,
    [
      "--conditions=source",
      "--import",
      "tsx",
      new URL("./placement-instance.ts", import.meta.url).pathname,
      url,
      name,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const lines = createInterface({ input: child.stdout });
  const ready = await new Promise<{ pid: number }>((resolve, reject) => {
    lines.once("line", (line) => resolve(JSON.parse(line) as { pid: number }));
    void exited.then(() => reject(new Error(`placement ${name} exited before it was ready`)));
  });
  return {
    name,
    pid: ready.pid,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** CPU time (ms) a process has used, from /proc. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) ".
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

interface InstanceStats {
  cpuMs: number;
  placed: number;
  conflicts: number;
}

/** A placement process's CPU time and counts; "start" and "stop" its CPU profile too (HANGAR_BENCH_CPU_PROF). */
const instanceStats = async (nc: NatsConnection, name: string, profile: "" | "start" | "stop" = "") =>
  (await nc.request(`bench.placement.cpu.${name}`, profile, { timeout: 10_000 })).json<InstanceStats>();

/** Registers every host as its agent would, ever so many at once. */
async function registerHosts(store: EventStore): Promise<void> {
  const hosts = new CommandHandler(store, hostsStream, hostDecider, { cacheSize: 0 });
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      for (let i = next++; i < HOSTS; i = next++) {
        const hostId = `host-${i}`;
        const size = HOST_SIZES[i % HOST_SIZES.length] as (typeof HOST_SIZES)[number];
        const region = REGIONS[i % REGIONS.length] as string;
        await hosts.handle(
          hostId,
          {
            type: "RegisterHost",
            hostId,
            region,
            ...size,
            address: `10.0.${i >> 8}.${i & 255}`,
            underlayIp: "",
            diskGb: 0,
          },
          { commandId: `register-${hostId}-${region}-${size.cpus}-${size.memoryMb}` },
        );
      }
    }),
  );
}

/** The heartbeats of every host, from the agent's own HostHeartbeats, spread over the second. */
function startHeartbeats(nc: NatsConnection): HostHeartbeats[] {
  const beats: HostHeartbeats[] = [];
  for (let i = 0; i < HOSTS; i++) {
    const size = HOST_SIZES[i % HOST_SIZES.length] as (typeof HOST_SIZES)[number];
    beats.push(
      new HostHeartbeats({
        host: {
          hostId: `host-${i}`,
          region: REGIONS[i % REGIONS.length] as string,
          ...size,
          address: `10.0.${i >> 8}.${i & 255}`,
        },
        machinesRunning: () => 0,
        publish: (subject, payload) => nc.publish(subject, payload),
        load: () => ({ load1: 0.1, freeMemoryMb: size.memoryMb }),
      }),
    );
  }
  // Each host starts beating at its own point of the first second, as agents started apart would.
  for (const [i, b] of beats.entries()) setTimeout(() => b.start(), Math.floor((i * 1_000) / HOSTS)).unref();
  return beats;
}

/** The n-th machine's request: sizes by their shares, regions in turn. */
function request(n: number): PlaceRequest {
  const f = (n * 0.618_033_988_75) % 1;
  let guest = GUESTS[0] as (typeof GUESTS)[number];
  for (let i = 0, acc = 0; i < GUESTS.length; i++) {
    guest = GUESTS[i] as (typeof GUESTS)[number];
    acc += guest.share;
    if (acc > f) break;
  }
  return {
    machine_id: `m${n.toString(36).padStart(5, "0")}`,
    app: `app-${n % 1_000}`,
    region: REGIONS[n % REGIONS.length] as string,
    cpus: guest.cpus,
    memory_mb: guest.memoryMb,
  };
}

export async function run(): Promise<Record<string, number>> {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url, maxPingOut: 100 });
  const instances: Instance[] = [];
  let beats: HostHeartbeats[] = [];
  try {
    const store = await EventStore.connect(nc);
    for (const s of [hostsStream, machinesStream, volumesStream, appsStream])
      await ensureStream(store.jsm, s);
    let t0 = performance.now();
    await registerHosts(store);
    const registerS = (performance.now() - t0) / 1000;
    beats = startHeartbeats(nc);
    t0 = performance.now();
    instances.push(
      ...(await Promise.all(Array.from({ length: INSTANCES }, (_, i) => startInstance(server.url, `p${i}`)))),
    );
    const startS = (performance.now() - t0) / 1000;

    // At rest for a while first: what the heartbeats alone cost each process, per second.
    const cpuNow = async (profile: "" | "start" = "") => ({
      instances: await Promise.all(instances.map((p) => instanceStats(nc, p.name, profile))),
      server: processCpuMs(server.pid),
      self: process.cpuUsage(),
    });
    const rest0 = await cpuNow();
    t0 = performance.now();
    await sleep(REST_MS);
    const rest1 = await cpuNow();
    const restS = (performance.now() - t0) / 1000;
    const atRest = {
      instances: rest1.instances.map((s, i) => s.cpuMs - (rest0.instances[i]?.cpuMs ?? 0)),
      server: rest1.server - rest0.server,
      self: (rest1.self.user + rest1.self.system - rest0.self.user - rest0.self.system) / 1000,
    };
    const before = await cpuNow("start");
    const latencies: number[] = [];
    const answers = new Map<string, string>();
    let refused = 0;
    let failed = 0;
    let next = 0;
    t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let n = next++; n < MACHINES; n = next++) {
          const req = request(n);
          const sent = performance.now();
          try {
            const placed = await sendCommand<PlaceRequest, PlaceResult>(nc, subjects.place, req);
            answers.set(req.machine_id, placed.host_id);
          } catch (err) {
            // A refusal for lack of room is an answer; anything else (a timeout) is a failure.
            if (err instanceof CommandError && err.code === "insufficient_capacity") refused++;
            else if (++failed <= 5) console.error(`placement of ${req.machine_id} failed: ${String(err)}`);
          }
          latencies.push(performance.now() - sent);
        }
      }),
    );
    const placeS = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(before.self);
    const restShare = (ms: number) => `${round((ms / 1000 / restS) * 100)} % of a core at rest`;
    const after = {
      instances: await Promise.all(instances.map((p) => instanceStats(nc, p.name, "stop"))),
      server: processCpuMs(server.pid),
    };
    for (const b of beats) b.stop();

    // The log, read back: every reservation and release folded against its host's capacity.
    const hosts = await readStream(store, hostsStream);
    const report = checkInvariants({ machines: [], hosts, scaling: [] });
    const reservedOn = new Map<string, string>();
    for (const e of hosts)
      if (e.event.type === "HostMachineReserved") reservedOn.set(e.event.data.machineId ?? "", e.aggregateId);
    const doublePlacements = report.violations.filter((v) => /^machine \S+ reserved/.test(v)).length;
    const overcommitted = Object.values(report.hostPeaks).filter(
      (p) => p.memoryMb > p.capacityMemoryMb || p.cpus > p.capacityCpus,
    ).length;
    let answerMismatches = 0;
    for (const [machineId, hostId] of answers) if (reservedOn.get(machineId) !== hostId) answerMismatches++;
    for (const v of report.violations.slice(0, 10)) console.error(`invariant broken: ${v}`);

    const placed = answers.size;
    const placementsPerS = placed / placeS;
    const cpuPerPlacement = (ms: number) => round((ms * 1000) / Math.max(placed, 1), 1);
    const instanceCpu = instances.map(
      (_, i) => (after.instances[i]?.cpuMs ?? 0) - (before.instances[i]?.cpuMs ?? 0),
    );
    const conflicts = after.instances.reduce(
      (sum, s, i) => sum + s.conflicts - (before.instances[i]?.conflicts ?? 0),
      0,
    );
    const serverCpu = after.server - before.server;
    const selfCpu = (self.user + self.system) / 1000;
    const totalCpu = instanceCpu.reduce((a, b) => a + b, 0) + serverCpu + selfCpu;
    const busiest = Math.max(...Object.values(report.hostPeaks).map((p) => p.cpus / p.capacityCpus));
    const full = Object.values(report.hostPeaks).filter((p) => p.cpus === p.capacityCpus).length;

    console.log(
      `placement: ${HOSTS} hosts in ${REGIONS.length} regions, ${MACHINES} machines, ${INSTANCES} placement processes, ${CONCURRENCY} requests in flight`,
    );
    printTable([
      ["hosts registered", HOSTS, `${round(registerS, 1)} s (${round(HOSTS / registerS)}/s)`],
      ["placement processes ready", INSTANCES, `${round(startS, 1)} s after registration`],
      ["machines placed", placed, `${refused} refused for lack of room, ${failed} failed (no answer in 5 s)`],
      ["placements/s", round(placementsPerS), `over ${round(placeS, 1)} s`],
      ["p50 ms", round(percentile(latencies, 50), 2), "request latency"],
      ["p99 ms", round(percentile(latencies, 99), 2), "request latency"],
      ["conflicts", conflicts, "appends that lost to another instance's on the same host"],
      ["hosts full (CPUs)", full, `busiest host at ${round(busiest * 100)} % of its CPUs`],
      ...instances.map((p, i): [string, number, string] => [
        `CPU us/placement, ${p.name}`,
        cpuPerPlacement(instanceCpu[i] ?? 0),
        `${(after.instances[i]?.placed ?? 0) - (before.instances[i]?.placed ?? 0)} placed by it, ${round(((instanceCpu[i] ?? 0) / 1000 / placeS) * 100)} % of a core (${restShare(atRest.instances[i] ?? 0)})`,
      ]),
      [
        "CPU us/placement, nats-server",
        cpuPerPlacement(serverCpu),
        `${round((serverCpu / 1000 / placeS) * 100)} % of a core (${restShare(atRest.server)}), ${round((serverCpu / totalCpu) * 100)} % of all CPU used`,
      ],
      [
        "CPU us/placement, bench",
        cpuPerPlacement(selfCpu),
        `heartbeats of ${HOSTS} hosts and the requests, ${round((selfCpu / 1000 / placeS) * 100)} % of a core (${restShare(atRest.self)})`,
      ],
      ["events in HOSTS", hosts.length, `read back and checked: ${report.violations.length} violations`],
      ["double placements", doublePlacements, "machines reserved twice or on two hosts"],
      ["overcommitted hosts", overcommitted, "hosts whose reservations went over capacity"],
      ["answers not in the log", answerMismatches, "placements answered with a host the log does not hold"],
    ]);
    return {
      hosts: HOSTS,
      machines: MACHINES,
      placements_per_s: round(placementsPerS),
      p99_ms: round(percentile(latencies, 99), 2),
      double_placements: doublePlacements,
      overcommitted_hosts: overcommitted,
      instances: INSTANCES,
      concurrency: CONCURRENCY,
      refused,
      failed,
      p50_ms: round(percentile(latencies, 50), 2),
      conflicts,
      nats_cpu_share: round(serverCpu / totalCpu, 2),
      cpu_us_per_placement: round((totalCpu * 1000) / Math.max(placed, 1)),
      rest_cpu_cores: round(
        (atRest.instances.reduce((a, b) => a + b, 0) + atRest.server + atRest.self) / 1000 / restS,
        2,
      ),
      invariant_violations: report.violations.length,
      answers_not_in_log: answerMismatches,
    };
  } finally {
    for (const b of beats) b.stop();
    await Promise.all(instances.map((p) => p.stop()));
    await nc.drain();
    await server.stop();
  }
}

// Volumes end to end (issue 15, acceptance 7), on a whole platform started by tests/platform/harness.ts
// (nats-server and every service as its own process; real loop devices and ext4 images):
// - create_p99_ms: CREATES volumes of 1 GB made one after another through POST /v1/apps/<app>/volumes,
//   each timed from sending the POST until it answers (the volume is "created": its disk is made).
// - attach_start_p99_ms: MACHINES machines, each mounting one of those volumes, timed from sending
//   POST .../machines until GET .../wait?state=started returns (attach, placement on the volume's
//   host, loop device, mount, idmapped bind, the app's start), after one unmeasured machine that
//   pulls the image.
// - seq_write_mb_s / fsync_p99_ms: one node script run inside a machine (exec) on its volume, and the
//   same script run on the host in a folder of the filesystem that holds the volume images
//   (host_seq_write_mb_s / host_fsync_p99_ms), alternating, ROUNDS each: WRITE_MB written in 1 MB
//   writes then one fdatasync (MB/s over the whole), and FSYNCS times a 4 KB write + fdatasync (each
//   timed). The best round's MB/s and the median round's p99 are reported.
// - snapshot_mb_s / freeze_p99_ms: SNAPSHOTS snapshots of a mounted volume holding the written data,
//   each timed from POST .../snapshots until it answers (frozen copy, zstd, object store); MB/s is the
//   bytes in use in the volume's filesystem (df inside) over that time, median of the rounds. The
//   freeze of each is what the volume service recorded (freeze_ms in the VOLUMES stream).
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { EventStore } from "@hangar/eventstore";
import { VolumesView } from "@hangar/service";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import {
  type ApiSnapshot,
  type ApiVolume,
  pushVolumeApp,
  releaseVolumeLeftovers,
  sh,
  volumesDir,
} from "../volumes/volume-app.js";
import { percentile, printTable, round } from "./stats.js";

const execFileAsync = promisify(execFile);

const APP = "volbench";
const CREATES = 20;
const MACHINES = 8;
const ROUNDS = 3;
const WRITE_MB = 128;
const FSYNCS = 200;
const SNAPSHOTS = 3;

/** The disk test, as one node program: prints {"mb_s":..,"fsync_p99_ms":..} for a folder. */
const DISK_TEST = `
const fs = require("node:fs");
const dir = process.argv[1];
const file = dir + "/bench-" + process.pid;
const chunk = Buffer.alloc(1 << 20, 7);
let fd = fs.openSync(file, "w");
let t = process.hrtime.bigint();
for (let i = 0; i < ${WRITE_MB}; i++) fs.writeSync(fd, chunk);
fs.fdatasyncSync(fd);
const seconds = Number(process.hrtime.bigint() - t) / 1e9;
fs.closeSync(fd);
fs.unlinkSync(file);
fd = fs.openSync(file, "w");
const small = Buffer.alloc(4096, 1);
const times = [];
for (let i = 0; i < ${FSYNCS}; i++) {
  t = process.hrtime.bigint();
  fs.writeSync(fd, small);
  fs.fdatasyncSync(fd);
  times.push(Number(process.hrtime.bigint() - t) / 1e6);
}
fs.closeSync(fd);
fs.unlinkSync(file);
times.sort((a, b) => a - b);
console.log(JSON.stringify({ mb_s: ${WRITE_MB} / seconds, fsync_p99_ms: times[Math.ceil(0.99 * times.length) - 1] }));
`;

interface DiskResult {
  mb_s: number;
  fsync_p99_ms: number;
}

function median(values: number[]): number {
  return percentile(values, 50);
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

async function createVolumes(p: TestPlatform): Promise<{ ids: string[]; ms: number[] }> {
  const ids: string[] = [];
  const ms: number[] = [];
  for (let i = 0; i < CREATES; i++) {
    const r = await timed(() =>
      p.api.ok<ApiVolume>("POST", `/apps/${APP}/volumes`, { name: "bench", region: "local", size_gb: 1 }),
    );
    ids.push(r.value.id);
    ms.push(r.ms);
  }
  return { ids, ms };
}

async function startMachines(p: TestPlatform, image: string, volumes: string[]) {
  const machines: string[] = [];
  const ms: number[] = [];
  // The first start on a host pulls and unpacks the image (the 250 MB node base): not measured.
  for (const [i, volume] of volumes.slice(0, MACHINES + 1).entries()) {
    const r = await timed(async () => {
      const m = await p.api.ok<{ id: string }>("POST", `/apps/${APP}/machines`, {
        region: "local",
        config: {
          image,
          guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 },
          mounts: [{ volume, path: "/data" }],
        },
      });
      await p.api.ok("GET", `/apps/${APP}/machines/${m.id}/wait?state=started&timeout=60`);
      return m.id;
    });
    machines.push(r.value);
    if (i > 0) ms.push(r.ms);
  }
  return { machines, ms };
}

async function diskRounds(p: TestPlatform, machine: string) {
  // The host's run writes next to the volume images: the filesystem a volume's writes land on.
  const hostDir = await mkdtemp(join(volumesDir(p), "..", "bench-host-"));
  const inside: DiskResult[] = [];
  const host: DiskResult[] = [];
  try {
    const script = DISK_TEST.replaceAll("'", "'\\''");
    for (let i = 0; i < ROUNDS; i++) {
      inside.push(JSON.parse(await sh(p, APP, machine, `node -e '${script}' /data`)) as DiskResult);
      const { stdout } = await execFileAsync(process.execPath, ["-e", DISK_TEST, hostDir]);
      host.push(JSON.parse(stdout) as DiskResult);
    }
  } finally {
    await rm(hostDir, { recursive: true, force: true });
  }
  return { inside, host };
}

async function snapshotRounds(p: TestPlatform, machine: string, volume: string) {
  // Data for the snapshots to copy: what the disk test leaves is gone, so write some that stays.
  await sh(p, APP, machine, `head -c ${WRITE_MB * 2 ** 20} /dev/urandom > /data/payload && sync`);
  const used = Number((await sh(p, APP, machine, "df -B1 --output=used /data | tail -1")).trim());
  const mbS: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < SNAPSHOTS; i++) {
    const r = await timed(() => p.api.ok<ApiSnapshot>("POST", `/apps/${APP}/volumes/${volume}/snapshots`));
    ids.push(r.value.id);
    mbS.push(used / 2 ** 20 / (r.ms / 1000));
  }
  // What the volume service recorded for each: the host agent's measured freeze.
  const nc = await p.connectNats();
  try {
    const view = await VolumesView.start(await EventStore.connect(nc));
    const freezes = ids.map((id) => view.snapshot(APP, id)?.snapshot.freeze_ms ?? Number.NaN);
    await view.stop();
    return { mbS, freezes, usedMb: used / 2 ** 20 };
  } finally {
    await nc.close();
  }
}

/** Runs the volumes benchmark on a fresh platform; prints the table and returns the JSON figures. */
export async function run(): Promise<Record<string, unknown>> {
  const p = await startTestPlatform();
  const home = p.home;
  try {
    await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
    const image = await pushVolumeApp(p, APP);
    const created = await createVolumes(p);
    const started = await startMachines(p, image, created.ids);
    const [machine] = started.machines as [string];
    const disk = await diskRounds(p, machine);
    const snaps = await snapshotRounds(p, machine, created.ids[0] as string);

    const result = {
      create_p99_ms: round(percentile(created.ms, 99)),
      attach_start_p99_ms: round(percentile(started.ms, 99)),
      seq_write_mb_s: round(Math.max(...disk.inside.map((d) => d.mb_s)), 1),
      host_seq_write_mb_s: round(Math.max(...disk.host.map((d) => d.mb_s)), 1),
      fsync_p99_ms: round(median(disk.inside.map((d) => d.fsync_p99_ms)), 2),
      host_fsync_p99_ms: round(median(disk.host.map((d) => d.fsync_p99_ms)), 2),
      snapshot_mb_s: round(median(snaps.mbS), 1),
      freeze_p99_ms: round(percentile(snaps.freezes, 99)),
    };
    printTable([
      ["create_p50_ms", round(percentile(created.ms, 50)), `${CREATES} volumes of 1 GB, one at a time`],
      ["create_p99_ms", result.create_p99_ms, "target < 500"],
      ["attach_start_p50_ms", round(percentile(started.ms, 50)), `${MACHINES} machines, each on a volume`],
      ["attach_start_p99_ms", result.attach_start_p99_ms, "POST machine until wait?state=started"],
      [
        "seq_write_mb_s",
        result.seq_write_mb_s,
        `${WRITE_MB} MB + fdatasync in the machine, best of ${ROUNDS}`,
      ],
      ["host_seq_write_mb_s", result.host_seq_write_mb_s, "the same on the host's filesystem"],
      ["seq_write_ratio", round(result.seq_write_mb_s / result.host_seq_write_mb_s, 2), "target >= 0.8"],
      ["fsync_p99_ms", result.fsync_p99_ms, `${FSYNCS} x (4 KB write + fdatasync), median of ${ROUNDS}`],
      ["host_fsync_p99_ms", result.host_fsync_p99_ms, "the same on the host's filesystem"],
      ["fsync_ratio", round(result.fsync_p99_ms / result.host_fsync_p99_ms, 2), "target <= 1.5"],
      ["snapshot_mb_s", result.snapshot_mb_s, `${round(snaps.usedMb)} MB in use, median of ${SNAPSHOTS}`],
      ["freeze_p99_ms", result.freeze_p99_ms, "fsfreeze -f to -u, as recorded"],
    ]);
    for (const id of started.machines) await p.api.ok("DELETE", `/apps/${APP}/machines/${id}?force=true`);
    return result;
  } finally {
    await p.close();
    await releaseVolumeLeftovers(home);
  }
}

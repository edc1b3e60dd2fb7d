// What the volumes e2e tests and `pnpm bench volumes` share: an app image that records each of its
// starts on its volume, exec inside a machine, and what of volumes is on the host (image files, loop
// devices, mounts) to check that each is accounted for and that a test leaves none behind.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { BlobStore, ImageRegistry } from "@hangar/oci";
import type { HostExecReply } from "@hangar/service";
import { pushNodeLayerImage } from "../fixtures/node-layer-image.js";
import type { TestPlatform } from "../platform/harness.js";

const run = promisify(execFile);

/** Bytes in a GiB: a volume's size_gb is whole GiB on the host. */
export const GIB = 2 ** 30;

// The app appends a line to /data/boots.log on every start (so a deploy writes to its volume), then
// serves the log on 8080.
const SERVER_JS = `const fs = require("node:fs");
const http = require("node:http");
fs.appendFileSync("/data/boots.log", new Date().toISOString() + " " + process.env.FLY_MACHINE_ID + "\\n");
http.createServer((req, res) => res.end(fs.readFileSync("/data/boots.log"))).listen(8080);
`;

/** Pushes the volume app's image (node:20-slim plus /app/server.js) as `<repository>`; returns its ref. */
export async function pushVolumeApp(p: TestPlatform, repository: string): Promise<string> {
  const nc = await p.connectNats();
  const work = await mkdtemp(join(tmpdir(), "hangar-volume-app-"));
  try {
    const root = join(work, "root");
    await mkdir(join(root, "app"), { recursive: true });
    await writeFile(join(root, "app", "server.js"), SERVER_JS);
    const registry = await ImageRegistry.open(nc, await BlobStore.open(nc));
    const refs = await pushNodeLayerImage(registry, {
      repository,
      root,
      work,
      variants: { v1: { Cmd: ["node", "/app/server.js"], WorkingDir: "/app" } },
    });
    return refs.v1;
  } finally {
    await nc.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** Runs `sh -c script` in the machine through the exec API; throws unless it exits 0. */
export async function sh(p: TestPlatform, app: string, machineId: string, script: string): Promise<string> {
  const res = await p.api.call<HostExecReply>("POST", `/apps/${app}/machines/${machineId}/exec`, {
    command: ["sh", "-c", script],
    timeout: 60,
  });
  if (res.status !== 200 || res.body.exit_code !== 0) {
    throw new Error(`exec ${script} in ${machineId}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body.stdout;
}

/** Calls `check` until it resolves without throwing, or throws its last error after `timeoutMs`. */
export async function until<T>(check: () => Promise<T>, timeoutMs: number, stepMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await sleep(stepMs);
    }
  }
}

/** Fly's Volume as the gateway answers it (the fields the tests read). */
export interface ApiVolume {
  id: string;
  name: string;
  state: string;
  size_gb: number;
  region: string;
  zone: string;
  attached_machine_id: string | null;
}

/** Fly's VolumeSnapshot as the gateway answers it (the fields the tests read). */
export interface ApiSnapshot {
  id: string;
  status: string;
  size: number;
  digest: string;
}

/** The folder of the platform host's volume images (the host agent's default, under its state folder). */
export function volumesDir(p: TestPlatform): string {
  return join(p.hostStateDir, "volumes");
}

/** The files in the host's volumes folder (none when it does not exist yet). */
export async function volumeFiles(p: TestPlatform): Promise<string[]> {
  return readdir(volumesDir(p)).catch(() => []);
}

interface LoopDevice {
  name: string;
  "back-file": string | null;
}

/** The loop devices whose backing file is under `dir`: device and backing file. */
export async function loopDevicesUnder(dir: string): Promise<{ device: string; file: string }[]> {
  const { stdout } = await run("losetup", ["-J", "-l"]);
  if (stdout.trim() === "") return [];
  const { loopdevices } = JSON.parse(stdout) as { loopdevices: LoopDevice[] };
  return loopdevices
    .filter((l) => l["back-file"]?.startsWith(`${dir}/`))
    .map((l) => ({ device: l.name, file: (l["back-file"] as string).replace(/ \(deleted\)$/, "") }));
}

/** Mount points under `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  return mountinfo
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Removes the mounts and loop devices a test platform's volumes may have left under `home` (a host
 * agent killed with SIGKILL does not release them), so a test leaves nothing on the machine.
 */
export async function releaseVolumeLeftovers(home: string): Promise<void> {
  for (const point of await mountsUnder(home)) await run("umount", ["-l", point]).catch(() => undefined);
  for (const loop of await loopDevicesUnder(home))
    await run("losetup", ["-d", loop.device]).catch(() => undefined);
}

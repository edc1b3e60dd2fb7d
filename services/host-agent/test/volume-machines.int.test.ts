import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copyHostExecutables } from "@hangar/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MachineRunSpec, ProcessDriver } from "../src/driver/mod.js";
import { loopDevices, VolumeDisks } from "../src/volumes/disk.js";
import { removeStateDir, runSpec, sh, tempStateDir } from "./harness.js";
import { waitFor } from "./wait.js";

// Machines of a tiny image (the host's sh, id, df, cat and sleep) that runs as a user, with a real
// ext4 volume on a real loop device bound in at /data.
const MIB = 2 ** 20;
const canRun = process.getuid?.() === 0 && existsSync("/dev/loop-control");

let stateDir = "";
let layer = "";
let disks: VolumeDisks;
const drivers: ProcessDriver[] = [];
const volumes = ["vol_0000000000000a01", "vol_0000000000000a02"];

function machine(machineId: string, volumeId: string, script: string): MachineRunSpec {
  return runSpec(machineId, sh(script), {
    org: "volume-test",
    cwd: "/",
    sandbox: { image: "test/volumes@sha256:0", lowers: [layer], user: "app", network: "host" },
    volumes: [{ volume: volumeId, path: "/data" }],
  });
}

function driver(d = disks): ProcessDriver {
  const made = new ProcessDriver({ stateDir, volumes: d });
  drivers.push(made);
  return made;
}

async function devicesOf(volumeId: string): Promise<string[]> {
  const file = disks.imagePath(volumeId);
  return (await loopDevices()).filter((d) => d.file === file).map((d) => d.name);
}

describe.runIf(canRun)("machines with volumes", () => {
  beforeAll(async () => {
    stateDir = await tempStateDir();
    layer = await mkdtemp(join(tmpdir(), "hangar-volume-layer-"));
    await copyHostExecutables(layer, ["/bin/sh", "/usr/bin/id", "/bin/df", "/bin/cat", "/bin/sleep"]);
    await mkdir(join(layer, "etc"), { recursive: true });
    await writeFile(
      join(layer, "etc/passwd"),
      "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    );
    await writeFile(join(layer, "etc/group"), "root:x:0:\napp:x:1000:\n");
    disks = new VolumeDisks({
      dir: join(stateDir, "volumes"),
      mountsDir: join(stateDir, "volume-mounts"),
      freezeTimeoutMs: 10_000,
    });
    for (const id of volumes) await disks.create(id, 64 * MIB);
  });
  afterAll(async () => {
    for (const d of drivers) await d.close();
    if (stateDir) {
      for (const id of volumes) await disks.unmount(id);
      await removeStateDir(stateDir);
      for (const id of volumes) expect(await devicesOf(id)).toEqual([]);
    }
    if (layer) await rm(layer, { recursive: true, force: true });
  });

  it("binds the volume idmapped: the image's user writes files stored with its own uid, and df shows the volume's size", async () => {
    const [id = ""] = volumes;
    const first = driver();
    await first.start(
      machine("vm1", id, "id -u > /data/uid; df -k /data > /data/df; echo one > /data/first; exec sleep 600"),
    );
    const at = disks.mountPoint(id);
    await waitFor("the machine's writes", () => (existsSync(join(at, "first")) ? true : undefined));
    expect((await readFile(join(at, "uid"), "utf8")).trim()).toBe("1000");
    // Stored as the machine's uid 1000, not its org range's host id: the volume works in any range.
    expect((await stat(join(at, "first"))).uid).toBe(1000);
    expect((await stat(at)).uid).toBe(1000);
    const df = (await readFile(join(at, "df"), "utf8")).trim().split("\n")[1]?.split(/\s+/) ?? [];
    const kib = Number(df[1]);
    console.log(`df -k /data in the machine: ${kib} KiB for a 64 MiB volume`);
    expect(kib).toBeGreaterThan(0.8 * 64 * 1024);
    expect(kib).toBeLessThanOrEqual(64 * 1024);
    expect(await devicesOf(id)).toHaveLength(1);

    // The agent dies (nothing stopped): the next one adopts the machine, which still has its volume.
    await first.close();
    const second = driver();
    await second.adopt();
    expect(second.running().map((m) => m.machineId)).toContain("vm1");
    await second.stop("vm1", { signal: "SIGKILL", timeoutMs: 5_000 });
    // Its next run mounts the same volume on the same loop device: none leaked, the data is there.
    await second.start(machine("vm1", id, "cat /data/first > /data/again; exec sleep 600"));
    const again = await waitFor("the second run's read", async () => {
      const text = await readFile(join(at, "again"), "utf8").catch(() => "");
      return text === "" ? undefined : text;
    });
    expect(again).toBe("one\n");
    expect(await devicesOf(id)).toHaveLength(1);

    await second.destroy("vm1");
    expect(disks.isMounted(id)).toBe(false);
    expect(await devicesOf(id)).toEqual([]);
  });

  it("fails the start of a machine with a volume on a host without loop devices, saying so", async () => {
    const [, id = ""] = volumes;
    const noLoops = new VolumeDisks({ ...disks.opts, loopControl: join(stateDir, "no-loop-control") });
    const d = driver(noLoops);
    await expect(d.start(machine("vm2", id, "exec sleep 600"))).rejects.toThrow(
      /could not prepare its volumes: this host has no loop devices/,
    );
    expect(d.running()).toEqual([]);
    await d.destroy("vm2");
    expect(await devicesOf(id)).toEqual([]);
  });
});

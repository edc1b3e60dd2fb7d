// Issue 15 (volumes) on the whole platform, every service a real process and real loop devices:
// acceptance 1 (`hangar deploy` of an app with [mounts] writes to its volume, and the data survives a
// restart, a second deploy and a host agent kill -9; df inside shows the volume's size; the deploy is
// the platform's, so its release_command runs and a failed check returns the machine, in place, to
// the release before), 3 (a snapshot
// restored into a new volume holds the data as of the snapshot, checksum for checksum), 5 (filling
// that volume gives the app ENOSPC and nothing worse) and 6 (the volume service killed with SIGKILL
// during a create and during a snapshot: after its restart no volume is lost or doubled, the
// snapshot is created or recorded failed, and every disk file and loop device on the host belongs
// to a volume the API lists).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HostExecReply } from "@hangar/service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import {
  type ApiSnapshot,
  type ApiVolume,
  GIB,
  loopDevicesUnder,
  pushVolumeApp,
  releaseVolumeLeftovers,
  sh,
  until,
  volumeFiles,
  volumesDir,
} from "./volume-app.js";

const APP = "notes";
let p: TestPlatform;
let home = "";
let work = "";
let image = "";
/** The machine `hangar deploy` made, and its volume. */
let machineId = "";
let volumeId = "";
/** The machine on the volume restored from a snapshot (acceptance 3), filled up by acceptance 5. */
let restoredMachine = "";

beforeAll(async () => {
  p = await startTestPlatform();
  home = p.home;
  work = mkdtempSync(join(tmpdir(), "hangar-volumes-e2e-"));
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
  image = await pushVolumeApp(p, APP);
  writeFileSync(
    join(work, "fly.toml"),
    `app = "${APP}"\nprimary_region = "local"\n\n[mounts]\n  source = "data"\n  destination = "/data"\n`,
  );
}, 180_000);

afterAll(async () => {
  await p?.close();
  if (home) await releaseVolumeLeftovers(home);
  if (work) rmSync(work, { recursive: true, force: true });
});

interface DeployJson {
  status: string;
  machines: string[];
  volumes_created: string[];
}

async function deploy(): Promise<DeployJson> {
  const res = await runHangar(["deploy", "--image", image, "--json"], {
    cwd: work,
    env: { HANGAR_HOME: p.home },
    timeoutMs: 120_000,
  });
  expect(res.code, res.stderr + res.stdout).toBe(0);
  return JSON.parse(res.stdout) as DeployJson;
}

const volumes = () => p.api.ok<ApiVolume[]>("GET", `/apps/${APP}/volumes`);
const inMachine = (script: string, id = machineId) => sh(p, APP, id, script);
/** The lines of /data/boots.log: one per start of the app on the volume. */
const boots = async (id = machineId) => (await inMachine("cat /data/boots.log", id)).trim().split("\n");

describe("acceptance 1: an app with [mounts] keeps its data", () => {
  it("deploy creates the volume and the app writes to it on start", async () => {
    const out = await deploy();
    expect(out.status).toBe("succeeded");
    expect(out.volumes_created).toHaveLength(1);
    [machineId] = out.machines as [string];
    [volumeId] = out.volumes_created as [string];
    const [volume] = await volumes();
    expect(volume).toMatchObject({
      id: volumeId,
      name: "data",
      state: "created",
      size_gb: 1,
      region: "local",
      attached_machine_id: machineId,
    });
    expect(await until(() => boots(), 30_000)).toHaveLength(1);
    await inMachine("echo kept > /data/marker");
  }, 150_000);

  it("df inside the machine shows the volume's size, within ext4's overhead", async () => {
    const size = Number((await inMachine("df -B1 --output=size /data | tail -1")).trim());
    expect(size).toBeGreaterThan(0.9 * GIB);
    expect(size).toBeLessThanOrEqual(GIB);
  });

  it("the data survives a restart", async () => {
    await p.api.ok("POST", `/apps/${APP}/machines/${machineId}/restart`);
    await until(async () => expect(await boots()).toHaveLength(2), 60_000);
    expect(await inMachine("cat /data/marker")).toBe("kept\n");
  }, 90_000);

  it("the data survives a second deploy, which updates the machine in place on the same volume", async () => {
    const out = await deploy();
    expect(out).toMatchObject({ status: "succeeded", machines: [machineId], volumes_created: [] });
    await until(async () => expect(await boots()).toHaveLength(3), 60_000);
    expect(await inMachine("cat /data/marker")).toBe("kept\n");
    expect((await volumes()).map((v) => v.id)).toEqual([volumeId]);
  }, 150_000);

  it("the platform runs the deploy: a release_command runs once, and a release whose check fails returns the machine to the previous release on its volume", async () => {
    interface ReleaseJson {
      version: number;
      status: string;
      rolled_back_to: number | null;
      release_command: { exit_code: number | null } | null;
    }
    const releases = () => p.api.ok<ReleaseJson[]>("GET", `/apps/${APP}/releases`);
    const good = (await releases()).find((r) => r.status === "succeeded") as ReleaseJson;
    const config = (extra: string) =>
      writeFileSync(
        join(work, "fly.toml"),
        `app = "${APP}"\nprimary_region = "local"\n\n[mounts]\n  source = "data"\n  destination = "/data"\n${extra}`,
      );
    config(`\n[deploy]\n  release_command = "node -e 'console.log(42)'"\n`);
    const out = await deploy();
    expect(out).toMatchObject({ status: "succeeded", machines: [machineId], volumes_created: [] });
    const withCommand = (await releases()).find((r) => r.status === "succeeded" && r.version > good.version);
    expect(withCommand?.release_command).toMatchObject({ exit_code: 0 });
    await until(async () => expect(await boots()).toHaveLength(4), 60_000);

    // A check that never passes (nothing listens on 9999): the platform updates the machine back.
    config(`\n[checks.alive]\n  type = "tcp"\n  port = 9999\n  interval = "1s"\n  timeout = "1s"\n`);
    const res = await runHangar(["deploy", "--image", image, "--wait-timeout", "8", "--json"], {
      cwd: work,
      env: { HANGAR_HOME: p.home },
      timeoutMs: 120_000,
    });
    expect(res.code, res.stderr + res.stdout).not.toBe(0);
    const failed = JSON.parse(res.stdout) as DeployJson & { rolled_back_to: number };
    expect(failed).toMatchObject({ status: "failed", rolled_back_to: (withCommand as ReleaseJson).version });
    expect(res.stderr).toMatch(/keeps serving \(the platform returned the app to it\)/);
    // Back on the release before it, on the same volume, with its data.
    await until(async () => {
      const m = await p.api.ok<{ state: string; config: { metadata: Record<string, string> } }>(
        "GET",
        `/apps/${APP}/machines/${machineId}`,
      );
      expect(m.state).toBe("started");
      expect(m.config.metadata.hangar_release).toBe(String(withCommand?.version));
    }, 60_000);
    expect(await inMachine("cat /data/marker")).toBe("kept\n");
    expect((await volumes()).map((v) => v.id)).toEqual([volumeId]);
    config("");
  }, 240_000);

  it("the data survives a kill -9 of the host agent and its restart", async () => {
    const before = await boots();
    await p.services["host-agent"].kill("SIGKILL");
    await p.services["host-agent"].restart();
    await until(async () => expect(await inMachine("cat /data/marker")).toBe("kept\n"), 60_000);
    expect((await boots()).slice(0, before.length)).toEqual(before);
  }, 90_000);
});

describe("acceptance 3: a snapshot restored into a new volume holds the data as of the snapshot", () => {
  it("byte for byte (sha256 of every file)", async () => {
    const taken = await inMachine(
      "mkdir -p /data/snap && head -c 3145728 /dev/urandom > /data/snap/a && head -c 1000 /dev/urandom > /data/snap/b && cd /data/snap && sha256sum *",
    );
    const snapshot = await p.api.ok<ApiSnapshot>("POST", `/apps/${APP}/volumes/${volumeId}/snapshots`);
    expect(snapshot.status).toBe("created");
    await inMachine("head -c 4096 /dev/urandom >> /data/snap/a && echo later > /data/snap/c");
    expect(await inMachine("cd /data/snap && sha256sum *")).not.toBe(taken);

    const restored = await p.api.ok<ApiVolume>("POST", `/apps/${APP}/volumes`, {
      name: "restored",
      region: "local",
      size_gb: 1,
      snapshot_id: snapshot.id,
    });
    expect(restored.state).toBe("created");
    const machine = await p.api.ok<{ id: string }>("POST", `/apps/${APP}/machines`, {
      region: "local",
      config: { image, mounts: [{ volume: restored.id, path: "/data" }] },
    });
    await p.api.ok("GET", `/apps/${APP}/machines/${machine.id}/wait?state=started&timeout=60`);
    expect(await inMachine("cd /data/snap && sha256sum *", machine.id)).toBe(taken);
    restoredMachine = machine.id;
  }, 120_000);
});

describe("acceptance 5: a full volume", () => {
  it("gives the app ENOSPC; the machine keeps running, and the other machine and the API are unaffected", async () => {
    const fill = await p.api.call<HostExecReply>("POST", `/apps/${APP}/machines/${restoredMachine}/exec`, {
      command: ["sh", "-c", "head -c 2147483648 /dev/zero > /data/fill"],
      timeout: 60,
    });
    expect(fill.status).toBe(200);
    expect(fill.body.exit_code).not.toBe(0);
    expect(fill.body.stderr).toMatch(/No space left on device/);
    expect(await inMachine("echo still here", restoredMachine)).toBe("still here\n");
    expect((await p.api.ok<{ state: string }>("GET", `/apps/${APP}/machines/${restoredMachine}`)).state).toBe(
      "started",
    );
    await inMachine("echo fine > /data/beside-a-full-volume");
    expect((await volumes()).length).toBeGreaterThanOrEqual(2);
    await p.api.ok("DELETE", `/apps/${APP}/machines/${restoredMachine}?force=true`);
  }, 90_000);
});

describe("acceptance 2: extend while mounted", () => {
  // ext4 grows a mounted filesystem only for a process with CAP_SYS_RESOURCE. With it, the app sees the
  // new size at once; without it (as in this CI's containers) the API says needs_restart, as Fly's does,
  // and the machine's next start grows the filesystem before mounting it.
  it("the app sees the new size at once, or after the restart the API asks for, with its data kept", async () => {
    const res = await p.api.ok<{ needs_restart: boolean; volume: ApiVolume }>(
      "PUT",
      `/apps/${APP}/volumes/${volumeId}/extend`,
      { size_gb: 2 },
    );
    expect(res.volume).toMatchObject({ id: volumeId, size_gb: 2 });
    if (res.needs_restart) await p.api.ok("POST", `/apps/${APP}/machines/${machineId}/restart`);
    const size = async () => Number((await inMachine("df -B1 --output=size /data | tail -1")).trim());
    await until(async () => expect(await size()).toBeGreaterThan(1.9 * GIB), 60_000);
    expect(await size()).toBeLessThanOrEqual(2 * GIB);
    expect(await inMachine("cat /data/marker")).toBe("kept\n");
  }, 90_000);
});

describe("acceptance 6: the volume service killed mid-way loses and doubles nothing", () => {
  /** Kills the volume service as soon as the VOLUMES stream records a change of `subject`, then restarts it. */
  async function killOnFirstEvent(subject: string, request: () => Promise<unknown>): Promise<void> {
    const nc = await p.connectNats();
    try {
      const sub = nc.subscribe(subject, { max: 1 });
      await nc.flush();
      const sent = request();
      for await (const _ of sub) break;
      await p.services.volume.kill("SIGKILL");
      // The cut-off request is never answered (its reply inbox died with the process) until the
      // gateway's own timeout: it is left to end with the platform; what counts is what the stream says.
      sent.catch(() => undefined);
      await p.services.volume.restart();
    } finally {
      await nc.close();
    }
  }

  /** Every image file and loop device of the host's volumes folder belongs to a usable volume the API lists. */
  async function accountedFor(): Promise<void> {
    const listed = (await volumes()).filter((v) => v.state !== "failed" && v.state !== "destroyed");
    const ids = new Set(listed.map((v) => v.id));
    for (const file of await volumeFiles(p))
      expect(ids, `file ${file}`).toContain(file.replace(/\.ext4$/, ""));
    const attached = new Set(listed.filter((v) => v.attached_machine_id).map((v) => v.id));
    for (const loop of await loopDevicesUnder(volumesDir(p))) {
      const id = loop.file.slice(volumesDir(p).length + 1).replace(/\.ext4$/, "");
      expect(attached, `loop device ${loop.device} of ${loop.file}`).toContain(id);
    }
  }

  it("during a create: the volume ends created or failed, once, with its disk accounted for", async () => {
    await killOnFirstEvent(`ev.volume.${APP}.>`, () =>
      p.api.call("POST", `/apps/${APP}/volumes`, { name: "crash", region: "local", size_gb: 1 }),
    );
    const crashed = await until(async () => {
      // Killed only after the first VOLUMES event: the volume exists, exactly once.
      const found = (await volumes()).filter((v) => v.name === "crash");
      expect(found).toHaveLength(1);
      expect(found[0]?.state).not.toBe("creating");
      return found;
    }, 30_000);
    expect(crashed).toHaveLength(1);
    expect(["created", "failed"]).toContain(crashed[0]?.state);
    await accountedFor();
  }, 60_000);

  it("during a snapshot: the snapshot ends created or failed, and the volume is thawed", async () => {
    const path = `/apps/${APP}/volumes/${volumeId}/snapshots`;
    const before = new Set((await p.api.ok<ApiSnapshot[]>("GET", path)).map((s) => s.id));
    await killOnFirstEvent(`ev.volume.${APP}.${volumeId}`, () => p.api.call("POST", path));
    const taken = await until(async () => {
      // Killed only after the first event of the snapshot: it exists, exactly once.
      const added = (await p.api.ok<ApiSnapshot[]>("GET", path)).filter((s) => !before.has(s.id));
      expect(added).toHaveLength(1);
      expect(["created", "failed"]).toContain(added[0]?.status);
      return added;
    }, 60_000);
    expect(taken).toHaveLength(1);
    // A freeze left on would hang this write.
    await inMachine("echo thawed > /data/after-snapshot && sync");
    await accountedFor();
  }, 90_000);
});

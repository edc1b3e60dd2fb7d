import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { HARDENED_PROBE, parseSandboxProbe, sandboxProbe } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  BlobStore,
  CATATONIT,
  chownToRange,
  DEFAULT_CAPABILITIES,
  defaultSeccomp,
  ImageRegistry,
  LayerStore,
  layerLowers,
  mountIdmappedOverlay,
  platformBaseImages,
  prepareCrunHost,
  type ResolvedImage,
  removeBundle,
  runContainer,
  runtimeSpec,
  SECCOMP_CACHE,
  unmountIfMounted,
  writeBundle,
} from "../src/mod.js";

const exec = promisify(execFile);
const range = { hostId: 3_000_000, size: 65536 };
let nc: NatsConnection;
let work: string;
let lowers: string[];
const roots: string[] = [];

beforeAll(async () => {
  expect(await prepareCrunHost()).toEqual({ ok: true });
  nc = await connect({ servers: inject("natsUrl") });
  const blobs = await BlobStore.open(nc, { bucket: `oci-test-runtime-blobs-${process.pid}` });
  const registry = await ImageRegistry.open(nc, blobs, { bucket: `oci-test-runtime-${process.pid}` });
  work = await mkdtemp(join(tmpdir(), "oci-runtime-"));
  // Traversable, not listable: each root filesystem sits in a 0700 folder of its range's root.
  await chmod(work, 0o711);
  const image = (await platformBaseImages(registry).make("node:20-slim")) as ResolvedImage;
  const layers = new LayerStore(join(work, "layers"), registry.blobs);
  lowers = await layerLowers(layers, image.manifest.layers);
});
afterAll(async () => {
  for (const root of roots) await unmountIfMounted(root);
  await nc?.drain();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A fresh root filesystem over the shared layers, idmapped into `range`. */
async function rootfs(name: string, attach?: "staged"): Promise<{ root: string; upper: string }> {
  const upper = join(work, name, "upper");
  const root = join(work, name, "root");
  await chownToRange(join(work, name), range);
  await chmod(join(work, name), 0o700);
  await chownToRange(upper, range);
  await chownToRange(join(work, name, "work"), range);
  await mkdir(root, { recursive: true });
  await mountIdmappedOverlay({
    lowers,
    upper,
    work: join(work, name, "work"),
    target: root,
    range,
    ...(attach ? { attach } : {}),
  });
  roots.push(root);
  return { root, upper };
}

async function runIn(
  root: string,
  args: string[],
  user = { uid: 0, gid: 0 },
): Promise<{ exitCode: number; out: string }> {
  let out = "";
  const spec = runtimeSpec({
    rootfs: root,
    args,
    env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: "/root" },
    cwd: "/",
    user,
    idRange: range,
    hardened: true,
    seccomp: await defaultSeccomp(DEFAULT_CAPABILITIES),
    network: { kind: "host" },
    hostname: "probe",
    init: CATATONIT,
    binds: [{ src: await sandboxProbe(), dest: "/usr/local/bin/hangar-probe", readOnly: true }],
  });
  const { exitCode } = await runContainer(`oci-test-${process.pid}-${roots.length}`, spec, {
    onStdout: (b) => {
      out += b.toString();
    },
    onStderr: (b) => {
      out += b.toString();
    },
  });
  return { exitCode, out };
}

describe("the hardened runtime", () => {
  it("refuses mknod, mount, modules and user namespaces to the image's root, with podman's capabilities and seccomp", async () => {
    const { root } = await rootfs("probe");
    const { exitCode, out } = await runIn(root, ["hangar-probe"]);
    expect(exitCode, out).toBe(0);
    const probe = parseSandboxProbe(out);
    expect(probe).toMatchObject({ ...HARDENED_PROBE, pid1: "hangar-init" });
    // Only the machine's own processes: its init and the probe.
    expect(probe.processes).toBe("2");
  });

  it("keeps the filter crun compiled: a later container gets it precompiled, and it refuses the same", async () => {
    const { root } = await rootfs("kept");
    const first = parseSandboxProbe((await runIn(root, ["hangar-probe"])).out);
    const kept = await readdir(SECCOMP_CACHE);
    expect(kept.some((f) => f.endsWith(".bpf"))).toBe(true);
    const spec = runtimeSpec({
      rootfs: root,
      args: ["true"],
      env: {},
      cwd: "/",
      user: { uid: 0, gid: 0 },
      idRange: range,
      hardened: true,
      seccomp: await defaultSeccomp(DEFAULT_CAPABILITIES),
      network: { kind: "host" },
    });
    const bundle = await writeBundle(`oci-test-${process.pid}-annotated`, spec);
    const written = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as {
      annotations?: Record<string, string>;
    };
    await removeBundle(`oci-test-${process.pid}-annotated`);
    expect(written.annotations?.["run.oci.seccomp_bpf_data"]?.length).toBeGreaterThan(100);
    const again = parseSandboxProbe((await runIn(root, ["hangar-probe"])).out);
    expect(again).toEqual(first);
    expect(again).toMatchObject(HARDENED_PROBE);
  });

  it.each([
    ["detached", undefined],
    ["staged (what a kernel before 6.15 gets)", "staged" as const],
  ])(
    "shows root the image's files as its own, and writes land in the upper owned by the range: %s lowers",
    async (_, attach) => {
      const name = `owner-${attach ?? "detached"}`;
      const { root, upper } = await rootfs(name, attach);
      // Nothing but the overlay is left mounted, and no staging folder is left.
      const mounts = (await exec("findmnt", ["-rno", "TARGET"])).stdout.split("\n");
      expect(mounts.filter((m) => m.startsWith(work))).toEqual(roots.filter((r) => mounts.includes(r)));
      expect((await readdir(join(work, name))).sort()).toEqual(["root", "upper", "work"]);
      const { exitCode, out } = await runIn(root, [
        "sh",
        "-c",
        "ls -ln /etc/passwd && echo x > /etc/hangar-written",
      ]);
      expect(exitCode, out).toBe(0);
      expect(out).toMatch(/^-rw-r--r-- 1 0 0 /);
      const written = await stat(join(upper, "etc", "hangar-written"));
      expect([written.uid, written.gid]).toEqual([range.hostId, range.hostId]);
      // Host users cannot reach the unpacked layers (setuid programs and device nodes stay as images hold them).
      expect((await stat(join(work, "layers"))).mode & 0o777).toBe(0o700);
      // The shared layer is untouched: still owned by host root, no copy made.
      expect((await stat(join(lowers[0] as string, "etc", "passwd"))).uid).toBe(0);
      expect((await exec("findmnt", ["-no", "OPTIONS", root])).stdout).toMatch(/nosuid.*nodev|nodev.*nosuid/);
    },
  );

  it("passes the process's exit status through init and crun", async () => {
    const { root } = await rootfs("status");
    expect((await runIn(root, ["sh", "-c", "exit 7"])).exitCode).toBe(7);
    expect((await runIn(root, ["sh", "-c", "kill -KILL $$"])).exitCode).toBe(137);
  });
});

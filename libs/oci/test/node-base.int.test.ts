import { execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import {
  availableBaseImages,
  BlobStore,
  type Digest,
  ensureBaseImage,
  hostArchitecture,
  ImageRegistry,
  LayerStore,
  mountOverlay,
  NODE_VERSION_LABEL,
  type ResolvedImage,
  sandboxArgv,
  UnknownBaseImageError,
  unmountIfMounted,
} from "../src/mod.js";

const exec = promisify(execFile);
const major = process.versions.node.split(".")[0];
let nc: NatsConnection;
let registry: ImageRegistry;
let work: string;
let merged: string;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  const blobs = await BlobStore.open(nc, { bucket: `oci-test-base-blobs-${process.pid}` });
  registry = await ImageRegistry.open(nc, blobs, { bucket: `oci-test-base-${process.pid}` });
  work = await mkdtemp(join(tmpdir(), "oci-node-base-"));
  merged = join(work, "merged");
  // An empty host cache of base layers, so that this test makes the layer from the host's runtime.
  process.env.HANGAR_CACHE_DIR = join(work, "cache");
});
afterAll(async () => {
  delete process.env.HANGAR_CACHE_DIR;
  await unmountIfMounted(merged);
  await nc?.drain();
  await rm(work, { recursive: true, force: true });
});

it("makes node:<major> from the host's runtime once, and runs node and npm in it", async () => {
  const [first, again] = await Promise.all([
    ensureBaseImage(registry, `node:${major}`),
    ensureBaseImage(registry, "node"),
  ]);
  const image = first as ResolvedImage;
  expect((again as ResolvedImage).digest).toBe(image.digest);
  expect((await ensureBaseImage(registry, `node:${major}-slim`)) as ResolvedImage).toMatchObject({
    digest: image.digest,
  });
  expect(image.config.config).toMatchObject({
    Cmd: ["node"],
    WorkingDir: "/",
    Labels: { [NODE_VERSION_LABEL]: process.version },
  });
  expect(image.config.config.Env).toContain(`NODE_VERSION=${process.versions.node}`);
  expect(image.manifest.layers).toHaveLength(1);

  const layers = new LayerStore(join(work, "layers"), registry.blobs);
  const lowers = await Promise.all(image.manifest.layers.map((l) => layers.dir(l.digest)));
  await mountOverlay({
    lowers: lowers.reverse(),
    upper: join(work, "upper"),
    work: join(work, "work"),
    target: merged,
  });
  const env = Object.fromEntries(
    (image.config.config.Env ?? []).map((e) => e.split("=", 2) as [string, string]),
  );
  const run = async (argv: string[], user?: { uid: number; gid: number }) =>
    (
      await exec(
        "bwrap",
        sandboxArgv({ rootfs: merged, argv, env: { ...env, HOME: "/root" }, ...user, tmpfs: true }).slice(1),
      )
    ).stdout;

  expect(await run(["node", "-e", "console.log(process.version)"])).toBe(`${process.version}\n`);
  const { stdout: hostNpm } = await exec("npm", ["--version"]);
  expect(await run(["sh", "-c", "npm --version"])).toBe(hostNpm);
  expect(
    await run(["sh", "-c", "ls /usr/bin/env && mkdir -p /tmp/a && echo ok | sed s/ok/fine/ | grep fine"]),
  ).toBe("/usr/bin/env\nfine\n");
});

it("answers scratch, and refuses bases it cannot make", async () => {
  expect(await ensureBaseImage(registry, "scratch")).toBe("scratch");
  expect(availableBaseImages()).toContain(`node:${major}`);
  const unknown = ensureBaseImage(registry, "python:3.12");
  await expect(unknown).rejects.toBeInstanceOf(UnknownBaseImageError);
  await expect(unknown).rejects.toThrow(new RegExp(`node:${major}`));
});

it("keeps the made layer in the host cache, and a second registry stores that same file", async () => {
  const first = (await ensureBaseImage(registry, `node:${major}`)) as ResolvedImage;
  const layer = first.manifest.layers[0];
  const cached = join(work, "cache", `node-base-${process.version}-${hostArchitecture()}.tar.gz`);
  expect((await stat(cached)).size).toBe(layer?.size);
  const blobs = await BlobStore.open(nc, { bucket: `oci-test-base2-blobs-${process.pid}` });
  const other = await ImageRegistry.open(nc, blobs, { bucket: `oci-test-base2-${process.pid}` });
  expect(await blobs.has(layer?.digest as Digest)).toBe(false);
  const second = (await ensureBaseImage(other, "node")) as ResolvedImage;
  expect(second.manifest.layers.map((l) => l.digest)).toEqual([layer?.digest]);
  expect(await blobs.has(layer?.digest as Digest)).toBe(true);
});

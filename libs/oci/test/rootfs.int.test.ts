import { execFile } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { copyHostExecutables } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import {
  BlobStore,
  bwrapPath,
  createLayer,
  LayerStore,
  mountOverlay,
  overlaySupported,
  sandboxArgv,
  unmountIfMounted,
} from "../src/mod.js";

// Two layers unpacked by a LayerStore, mounted as overlay lowers, and a shell run over them with bwrap.
const exec = promisify(execFile);
let nc: NatsConnection;
let work: string;
let merged: string;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  work = await mkdtemp(join(tmpdir(), "oci-rootfs-"));
  merged = join(work, "merged");
});
afterAll(async () => {
  await unmountIfMounted(merged);
  await nc?.drain();
  await rm(work, { recursive: true, force: true });
});

it("runs a command with bwrap over an overlay of unpacked layers", async () => {
  expect(await overlaySupported()).toBe(true);
  const bwrap = await bwrapPath();
  expect(bwrap).toBeDefined();
  const blobs = await BlobStore.open(nc, { bucket: `oci-test-rootfs-${process.pid}` });

  // Layer 1: a shell and cat with their libraries, and two files.
  const base = join(work, "base");
  await copyHostExecutables(base, ["/bin/sh", "/usr/bin/cat"]);
  await mkdir(join(base, "etc"), { recursive: true });
  await writeFile(join(base, "etc/motd"), "from layer one\n");
  await writeFile(join(base, "etc/removed"), "deleted by layer two\n");
  // Layer 2: an overlay upper dir that overwrites one file and deletes the other.
  const upper = join(work, "upper2");
  await mkdir(join(upper, "etc"), { recursive: true });
  await writeFile(join(upper, "etc/motd"), "from layer two\n");
  await exec("mknod", [join(upper, "etc/removed"), "c", "0", "0"]);

  const lowers: string[] = [];
  const store = new LayerStore(join(work, "layers"), blobs);
  for (const [i, dir] of [base, upper].entries()) {
    const layer = await createLayer(dir, join(work, `layer${i}.tar.gz`), { overlayUpper: true });
    await blobs.putFile(layer.file, layer.digest);
    // Concurrent asks for the same layer share one unpack.
    const [a, b] = await Promise.all([store.dir(layer.digest), store.dir(layer.digest)]);
    expect(a).toBe(b);
    lowers.unshift(a);
  }

  const mount = await mountOverlay({
    lowers,
    upper: join(work, "upper"),
    work: join(work, "work"),
    target: merged,
  });
  const argv = sandboxArgv({
    rootfs: merged,
    argv: [
      "/bin/sh",
      "-c",
      "cat /etc/motd; cat /etc/removed 2>/dev/null || echo removed is gone; echo $GREETING > /written",
    ],
    env: { GREETING: "hi", PATH: "/usr/bin:/bin" },
    dieWithParent: true,
  });
  const { stdout } = await exec(bwrap as string, argv.slice(1));
  expect(stdout).toBe("from layer two\nremoved is gone\n");
  // Writes land in the container's upper dir, never in the shared layer dirs.
  expect(await readFile(join(work, "upper/written"), "utf8")).toBe("hi\n");
  await mount.unmount();
  await expect(readFile(join(merged, "written"))).rejects.toThrow(/ENOENT/);
});

it("uses a layer unpacked from a stream only once the stream's bytes are verified", async () => {
  const blobs = await BlobStore.open(nc, { bucket: `oci-test-rootfs-stream-${process.pid}` });
  const dir = join(work, "streamed-src");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "hello"), "streamed\n");
  const layer = await createLayer(dir, join(work, "streamed.tar.gz"));
  const root = join(work, "streamed-layers");
  const store = new LayerStore(root, blobs); // an empty blob store: only the stream has the layer

  const refused = Promise.reject(new Error("its content hashes to something else"));
  refused.catch(() => {});
  await expect(
    store.dir(layer.digest, { stream: createReadStream(layer.file), verified: refused }),
  ).rejects.toThrow("its content hashes to something else");
  expect(await readdir(root)).toEqual([]);

  const unpacked = await store.dir(layer.digest, {
    stream: createReadStream(layer.file),
    verified: Promise.resolve(),
  });
  expect(await readFile(join(unpacked, "hello"), "utf8")).toBe("streamed\n");

  // Had already: the stream is still read to its end (the pull storing it waits on its reader).
  const stream = createReadStream(layer.file);
  expect(await store.dir(layer.digest, { stream, verified: Promise.resolve() })).toBe(unpacked);
  expect(stream.readableEnded).toBe(true);
});

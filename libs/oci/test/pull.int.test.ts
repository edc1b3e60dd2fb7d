import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  startFaultyRegistryProxy,
  startTestRegistry,
  type TestRegistry,
  writeTestImageLayout,
} from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  BlobCorruptedError,
  BlobStore,
  cacheFilled,
  cacheRepository,
  type Digest,
  ImageNotFoundError,
  ImageRegistry,
  type LayerSource,
  LayerStore,
  RegistryAuthError,
  resolveImage,
} from "../src/mod.js";

let nc: NatsConnection;
let work: string;
const registries: TestRegistry[] = [];
let seq = 0;

/** A fresh Hangar registry (own buckets), so each case starts with an empty pull-through cache. */
async function hangarRegistry(): Promise<ImageRegistry> {
  const id = `${process.pid}-${seq++}`;
  const blobs = await BlobStore.open(nc, { bucket: `oci-pull-blobs-${id}` });
  return ImageRegistry.open(nc, blobs, { bucket: `oci-pull-registry-${id}` });
}

/** A test registry holding `x/app:1`: an index of an amd64 image (marker "amd64") and an arm64 one. */
async function registryWithApp(
  auth: "none" | "basic" | "token",
  compression: "gzip" | "zstd" = "gzip",
  format?: "v2s2",
): Promise<TestRegistry> {
  const r = await startTestRegistry({ auth });
  registries.push(r);
  const layout = join(work, `layout-${seq++}`);
  writeTestImageLayout(
    layout,
    "1",
    [
      { architecture: "amd64", files: { marker: "amd64\n", big: "x".repeat(200_000) } },
      { architecture: "arm64", files: { marker: "arm64\n" } },
    ],
    compression,
  );
  await r.push(`oci:${layout}:1`, "x/app:1", { all: true, ...(format ? { format } : {}) });
  return r;
}

const creds = (r: TestRegistry) => async () => ({ username: r.username, password: r.password });

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  work = await mkdtemp(join(tmpdir(), "oci-pull-"));
});

afterAll(async () => {
  for (const r of registries) await r.stop();
  await nc?.close();
  await rm(work, { recursive: true, force: true });
});

/** The marker file of a resolved image, read from its one layer unpacked. */
async function markerOf(registry: ImageRegistry, layers: string[]): Promise<string> {
  const store = new LayerStore(join(work, `layers-${seq++}`), registry.blobs);
  const dir = await store.dir(layers[0] as `sha256:${string}`);
  return (await readFile(join(dir, "marker"))).toString().trim();
}

describe("pull-through from a real docker-registry", () => {
  it("pulls the amd64 image of an index anonymously (OCI, gzip), once", async () => {
    const r = await registryWithApp("none");
    const p = await startFaultyRegistryProxy(r.url);
    const registry = await hangarRegistry();
    const ref = `${r.host}/x/app:1`;
    const progress: string[] = [];
    const upstreams = { [r.host]: p.url };
    const image = await resolveImage(ref, { registry, upstreams, onProgress: (l) => progress.push(l) });
    expect(image.repository).toBe(cacheRepository(r.host, "x/app"));
    expect(image.config.architecture).toBe("amd64");
    expect(
      await markerOf(
        registry,
        image.manifest.layers.map((l) => l.digest),
      ),
    ).toBe("amd64");
    expect(progress.at(-1)).toMatch(/1\/1 layers/);
    const gets = p.blobGets.length;
    expect(gets).toBe(2); // config and layer
    const again = await resolveImage(ref, { registry, upstreams });
    expect(again.digest).toBe(image.digest);
    expect(p.blobGets.length).toBe(gets);
    await p.stop();
  });

  it("pulls Docker schema 2 with Basic auth", async () => {
    const r = await registryWithApp("basic", "gzip", "v2s2");
    const registry = await hangarRegistry();
    const image = await resolveImage(`${r.host}/x/app:1`, {
      registry,
      upstreams: { [r.host]: r.url },
      credentials: creds(r),
    });
    expect(image.manifest.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(
      await markerOf(
        registry,
        image.manifest.layers.map((l) => l.digest),
      ),
    ).toBe("amd64");
  });

  it("pulls zstd layers with the token flow, and refuses a wrong password", async () => {
    const r = await registryWithApp("token", "zstd");
    const registry = await hangarRegistry();
    const ref = `${r.host}/x/app:1`;
    const upstreams = { [r.host]: r.url };
    const wrong = resolveImage(ref, {
      registry,
      upstreams,
      credentials: async () => ({ username: r.username, password: "wrong" }),
    });
    await expect(wrong).rejects.toThrow(RegistryAuthError);
    await expect(wrong).rejects.toThrow(`authentication failed for ${ref}`);
    expect(await registry.tags(cacheRepository(r.host, "x/app"))).toEqual([]);
    const image = await resolveImage(ref, { registry, upstreams, credentials: creds(r) });
    expect(image.manifest.layers[0]?.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    expect(
      await markerOf(
        registry,
        image.manifest.layers.map((l) => l.digest),
      ),
    ).toBe("amd64");
  });

  it("retries 429 and 503, names a missing tag, and stores nothing of a corrupted blob", async () => {
    const r = await registryWithApp("none");
    const p = await startFaultyRegistryProxy(r.url);
    const registry = await hangarRegistry();
    const upstreams = { [r.host]: p.url };
    const missing = resolveImage(`${r.host}/x/app:2`, { registry, upstreams });
    await expect(missing).rejects.toThrow(ImageNotFoundError);
    await expect(missing).rejects.toThrow(
      `${r.host}/x/app:2 not found: tag 2 does not exist in ${r.host}/x/app`,
    );
    p.corrupt = true;
    const ref = `${r.host}/x/app:1`;
    await expect(resolveImage(ref, { registry, upstreams })).rejects.toThrow(BlobCorruptedError);
    await expect(resolveImage(ref, { registry, upstreams })).rejects.toThrow(`of ${ref} is corrupted`);
    expect(await registry.tags(cacheRepository(r.host, "x/app"))).toEqual([]);
    p.corrupt = false;
    p.failNext.push(429, 503);
    const image = await resolveImage(ref, { registry, upstreams });
    expect(image.config.architecture).toBe("amd64");
    await p.stop();
  });

  it("unpacks a layer from its download as it is stored, and keeps nothing of a corrupted one", async () => {
    const r = await registryWithApp("none");
    const p = await startFaultyRegistryProxy(r.url);
    const upstreams = { [r.host]: p.url };
    const ref = `${r.host}/x/app:1`;
    // The layer store reads from an empty blob store: a layer it has can only come from the stream.
    const empty = await hangarRegistry();
    const root = join(work, `streamed-${seq++}`);
    const layers = new LayerStore(root, empty.blobs);
    const streamed: string[] = [];
    const onLayerStream = (digest: Digest, source: LayerSource) => {
      streamed.push(digest);
      return layers.dir(digest, source);
    };

    p.corrupt = true;
    const registry = await hangarRegistry();
    const corrupted = resolveImage(ref, { registry, upstreams, onLayerStream });
    await expect(corrupted).rejects.toThrow(BlobCorruptedError);
    expect(streamed).toHaveLength(1);
    expect(await registry.blobs.has(streamed[0] as Digest)).toBe(false);
    expect(await readdir(root)).toEqual([]); // neither the layer nor its temp folder

    p.corrupt = false;
    const image = await resolveImage(ref, { registry, upstreams, onLayerStream });
    const layer = image.manifest.layers[0]?.digest as Digest;
    expect(streamed).toEqual([layer, layer]);
    expect(await registry.blobs.has(layer)).toBe(true);
    const dir = await layers.dir(layer);
    expect((await readFile(join(dir, "marker"))).toString()).toBe("amd64\n");

    // A layer the store has already: the stream is read to its end all the same, and the pull ends.
    const other = await hangarRegistry();
    const again = await resolveImage(ref, { registry: other, upstreams, onLayerStream });
    expect(again.digest).toBe(image.digest);
    expect(streamed).toHaveLength(3);
    expect(await other.blobs.has(layer)).toBe(true);
    expect(await readdir(root)).toHaveLength(1);
    await p.stop();
  });

  it("with a spool, ends once the layers are unpacked and fills the cache after; a resolve meanwhile downloads nothing", async () => {
    const r = await registryWithApp("none");
    const p = await startFaultyRegistryProxy(r.url);
    const upstreams = { [r.host]: p.url };
    const ref = `${r.host}/x/app:1`;
    const registry = await hangarRegistry();
    const layers = new LayerStore(join(work, `spooled-${seq++}`), registry.blobs);
    const spoolDir = join(work, `spool-${seq++}`);
    await mkdir(spoolDir);
    const opts = {
      registry,
      upstreams,
      spoolDir,
      onLayerStream: (digest: Digest, source: LayerSource) => layers.dir(digest, source),
    };
    p.corrupt = true;
    await expect(resolveImage(ref, opts)).rejects.toThrow(BlobCorruptedError);
    expect(await readdir(spoolDir)).toEqual([]);
    p.corrupt = false;

    // The cache fill is held until the checks of the pull's end are done.
    let open!: () => void;
    const held = new Promise<void>((resolve) => {
      open = resolve;
    });
    const putFile = registry.blobs.putFile.bind(registry.blobs);
    registry.blobs.putFile = async (...args) => {
      await held;
      return putFile(...args);
    };
    const image = await resolveImage(ref, opts);
    const layer = image.manifest.layers[0]?.digest as Digest;
    expect(image.config.architecture).toBe("amd64");
    expect((await readFile(join(await layers.dir(layer), "marker"))).toString()).toBe("amd64\n");
    expect(await registry.blobs.has(layer)).toBe(false);
    expect(await registry.tags(cacheRepository(r.host, "x/app"))).toEqual([]);
    const gets = p.blobGets.length;
    const meanwhile = await resolveImage(ref, opts);
    expect(meanwhile.digest).toBe(image.digest);
    expect(p.blobGets).toHaveLength(gets);

    open();
    await cacheFilled(registry);
    expect(await registry.blobs.has(layer)).toBe(true);
    expect(await registry.tags(cacheRepository(r.host, "x/app"))).toEqual(["1"]);
    expect(await readdir(spoolDir)).toEqual([]);
    expect((await registry.resolveIn(cacheRepository(r.host, "x/app"), "1", ref))?.digest).toBe(image.digest);
    await p.stop();
  });

  it("reports a cache fill that fails, records nothing, and fetches the image again on the next pull", async () => {
    const r = await registryWithApp("none");
    const p = await startFaultyRegistryProxy(r.url);
    const ref = `${r.host}/x/app:1`;
    const registry = await hangarRegistry();
    const layers = new LayerStore(join(work, `spooled-${seq++}`), registry.blobs);
    const spoolDir = join(work, `spool-${seq++}`);
    const failures: unknown[] = [];
    const opts = {
      registry,
      upstreams: { [r.host]: p.url },
      spoolDir,
      onLayerStream: (digest: Digest, source: LayerSource) => layers.dir(digest, source),
      onCacheFillError: (error: unknown) => failures.push(error),
    };
    const putFile = registry.blobs.putFile.bind(registry.blobs);
    registry.blobs.putFile = async () => {
      throw new Error("JetStream is out of storage");
    };
    const image = await resolveImage(ref, opts);
    await cacheFilled(registry);
    expect(failures).toEqual([new Error("JetStream is out of storage")]);
    expect(await registry.tags(cacheRepository(r.host, "x/app"))).toEqual([]);
    expect(await readdir(spoolDir)).toEqual([]);

    registry.blobs.putFile = putFile;
    const gets = p.blobGets.length;
    expect((await resolveImage(ref, opts)).digest).toBe(image.digest);
    expect(p.blobGets.length).toBeGreaterThan(gets);
    await cacheFilled(registry);
    expect(await registry.tags(cacheRepository(r.host, "x/app"))).toEqual(["1"]);
    expect(failures).toHaveLength(1);
    await p.stop();
  });

  it("never goes upstream for a host that is not configured", async () => {
    const registry = await hangarRegistry();
    await expect(resolveImage("127.0.0.1:1/x/app:1", { registry, upstreams: {} })).rejects.toThrow(
      ImageNotFoundError,
    );
    await expect(resolveImage("node:99", { registry, upstreams: {} })).rejects.toThrow(
      /no upstream registry is configured for docker.io/,
    );
  });
});

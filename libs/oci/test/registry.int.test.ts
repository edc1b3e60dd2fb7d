import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  BlobStore,
  createLayer,
  type Digest,
  digestOf,
  exportImageLayout,
  hostArchitecture,
  type ImageConfig,
  ImageNotFoundError,
  ImageRegistry,
  ManifestBlobUnknownError,
  ManifestInvalidError,
  MediaType,
  writeImage,
} from "../src/mod.js";

const exec = promisify(execFile);
let nc: NatsConnection;
let registry: ImageRegistry;
let work: string;
let digest: Digest;
let layer: { digest: Digest; size: number; diffId: Digest };

const config = (diffIds: Digest[]): ImageConfig => ({
  architecture: "amd64",
  os: "linux",
  config: { Cmd: ["/hello"], Env: ["A=1"], WorkingDir: "/", ExposedPorts: { "8080/tcp": {} } },
  rootfs: { type: "layers", diff_ids: diffIds },
  history: [{ created_by: "test" }],
});

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  const blobs = await BlobStore.open(nc, { bucket: `oci-test-registry-blobs-${process.pid}` });
  registry = await ImageRegistry.open(nc, blobs, { bucket: `oci-test-registry-${process.pid}` });
  work = await mkdtemp(join(tmpdir(), "oci-registry-"));
  await mkdir(join(work, "rootfs"));
  await writeFile(join(work, "rootfs/hello"), "#!/bin/sh\necho hello\n", { mode: 0o755 });
  const file = await createLayer(join(work, "rootfs"), join(work, "layer.tar.gz"));
  await blobs.putFile(file.file, file.digest);
  layer = file;
  digest = await writeImage(registry, {
    repository: "demo/app",
    tag: "v1",
    config: config([file.diffId]),
    layers: [file],
  });
});
afterAll(async () => {
  await nc?.drain();
  await rm(work, { recursive: true, force: true });
});

describe("ImageRegistry", () => {
  it("stores manifests as blobs and finds them by tag and by digest", async () => {
    const byTag = await registry.getManifest("demo/app", "v1");
    expect(byTag?.digest).toBe(digest);
    expect(byTag?.mediaType).toBe(MediaType.ociManifest);
    expect(digestOf(byTag?.bytes ?? "")).toBe(digest);
    expect((await registry.getManifest("demo/app", digest))?.digest).toBe(digest);
    expect(await registry.getManifest("other/app", digest)).toBeUndefined();
    expect(await registry.getManifest("demo/app", "v2")).toBeUndefined();
    await writeImage(registry, {
      repository: "demo/app",
      tag: "1.0.a",
      config: config([layer.diffId]),
      layers: [layer],
    });
    expect(await registry.tags("demo/app")).toEqual(["1.0.a", "v1"]);
    expect(await registry.tags("nothing/here")).toEqual([]);
  });

  it("resolves any host's ref by repository and tag or digest", async () => {
    for (const ref of [
      "registry.hangar.internal/demo/app:v1",
      `demo/app@${digest}`,
      "127.0.0.1:4280/demo/app:v1",
    ]) {
      const image = await registry.resolve(ref);
      expect(image).toMatchObject({ repository: "demo/app", digest });
      expect(image.config.config.Cmd).toEqual(["/hello"]);
      expect(image.manifest.layers.map((l) => l.digest)).toEqual([layer.digest]);
    }
    const missing = registry.resolve("demo/app:nope");
    await expect(missing).rejects.toBeInstanceOf(ImageNotFoundError);
    await expect(missing).rejects.toThrow(/skopeo copy/);
  });

  it("resolves an index to this host's platform manifest", async () => {
    const manifest = await registry.getManifest("demo/app", "v1");
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        {
          mediaType: MediaType.ociManifest,
          digest,
          size: manifest?.bytes.byteLength,
          platform: { os: "linux", architecture: hostArchitecture() },
        },
      ],
    };
    await registry.putManifest("demo/app", "multi", Buffer.from(JSON.stringify(index)), MediaType.ociIndex);
    expect((await registry.resolve("demo/app:multi")).digest).toBe(digest);
  });

  it("refuses manifests whose blobs are missing or whose digest is wrong", async () => {
    const missing = digestOf("not stored");
    const bad = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: missing, size: 10 },
      layers: [],
    };
    const bytes = Buffer.from(JSON.stringify(bad));
    await expect(
      registry.putManifest("demo/app", "bad", bytes, MediaType.ociManifest),
    ).rejects.toBeInstanceOf(ManifestBlobUnknownError);
    const good = (await registry.getManifest("demo/app", "v1"))?.bytes ?? new Uint8Array();
    await expect(
      registry.putManifest("demo/app", missing, good, MediaType.ociManifest),
    ).rejects.toBeInstanceOf(ManifestInvalidError);
    await expect(registry.putManifest("demo/app", "x", good, "text/plain")).rejects.toBeInstanceOf(
      ManifestInvalidError,
    );
    expect(await registry.getManifest("demo/app", "bad")).toBeUndefined();
  });
});

describe("OCI image layout export", () => {
  it("writes a layout that skopeo and umoci read", async () => {
    const dir = join(work, "layout");
    await exportImageLayout(registry, digest, dir, "v1");
    const { stdout } = await exec("skopeo", ["inspect", `oci:${dir}:v1`]);
    const inspected = JSON.parse(stdout) as { Digest: string; Layers: string[]; Env: string[] };
    expect(inspected.Digest).toBe(digest);
    expect(inspected.Layers).toEqual([layer.digest]);
    expect(inspected.Env).toEqual(["A=1"]);

    const raw = await exec("skopeo", ["inspect", "--raw", `oci:${dir}:v1`]);
    expect(digestOf(raw.stdout)).toBe(digest);
    const stat = await exec("umoci", ["stat", "--json", "--image", `${dir}:v1`]);
    expect(JSON.parse(stat.stdout)).toMatchObject({
      history: [expect.objectContaining({ created_by: "test" })],
    });

    // Every blob the layout holds is named by its digest.
    expect(digestOf(await readFile(join(dir, "blobs/sha256", layer.digest.slice(7))))).toBe(layer.digest);
  });
});

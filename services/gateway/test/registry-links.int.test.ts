import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintToken } from "@hangar/auth";
import { BlobStore, type Digest, digestOf, ImageRegistry, MediaType, writeImage } from "@hangar/oci";
import { createLogger } from "@hangar/telemetry";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApi } from "../src/http/api.js";
import type { TokenAuth } from "../src/http/auth.js";
import type { MachinesBackend } from "../src/http/backend.js";
import type { ApiEnv } from "../src/http/context.js";

// Blobs are stored once for every repository; these check, against a real nats-server, that a
// repository serves and mounts only the blobs linked to it, so one org cannot read another org's
// layers through its own repository by knowing their digests.
const APPS: Record<string, string> = { alpha: "org-a", "alpha-two": "org-a", beta: "org-b" };
const key = new Uint8Array(randomBytes(32));
const auth: TokenAuth = {
  key,
  directory: {
    orgOf: (app) => APPS[app],
    exists: (org) => Object.values(APPS).includes(org),
    limitsOf: () => ({}),
  },
  isRevoked: () => false,
};
const headers = (org: string) => ({
  authorization: `Bearer ${mintToken(key, { id: `tok_${org.replace("-", "_")}`, kind: "org", org })}`,
});
const A = headers("org-a");
const B = headers("org-b");

let nc: NatsConnection;
let api: Hono<ApiEnv>;
let registry: ImageRegistry;
let work: string;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  const blobs = await BlobStore.open(nc, { bucket: `links-test-blobs-${process.pid}` });
  registry = await ImageRegistry.open(nc, blobs, { bucket: `links-test-registry-${process.pid}` });
  work = await mkdtemp(join(tmpdir(), "gateway-registry-links-"));
  api = createApi({
    backend: {} as MachinesBackend, // the /v1 routes are not under test here
    auth,
    logger: createLogger("registry-links-int", { level: "silent" }),
    registry,
    registryUploadDir: join(work, "uploads"),
  });
});

afterAll(async () => {
  await nc?.drain();
  await rm(work, { recursive: true, force: true });
});

const errorCode = async (res: Response) =>
  ((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code;

const push = (repo: string, body: string, h: Record<string, string>) =>
  api.request(`/v2/${repo}/blobs/uploads/?digest=${digestOf(body)}`, { method: "POST", headers: h, body });

const mount = (repo: string, digest: Digest, from: string, h: Record<string, string>) =>
  api.request(`/v2/${repo}/blobs/uploads/?mount=${digest}&from=${from}`, { method: "POST", headers: h });

/** Pushes `layer` and a config to `repo` as blobs, then a manifest of them tagged `tag`. */
async function pushImage(repo: string, tag: string, layer: string, h: Record<string, string>) {
  const config = JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers" } });
  expect((await push(repo, config, h)).status).toBe(201);
  expect((await push(repo, layer, h)).status).toBe(201);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
    layers: [{ mediaType: MediaType.ociLayerTarGzip, digest: digestOf(layer), size: layer.length }],
  });
  const put = await api.request(`/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { ...h, "content-type": MediaType.ociManifest },
    body: manifest,
  });
  expect(put.status).toBe(201);
  return { config, manifest };
}

describe("blobs across orgs", () => {
  const secret = `org-a private layer ${process.pid}`;
  const digest = digestOf(secret);

  beforeAll(async () => {
    await pushImage("alpha/web", "v1", secret, A);
  });

  it("serves the owner its blob and manifest", async () => {
    const get = await api.request(`/v2/alpha/web/blobs/${digest}`, { headers: A });
    expect([get.status, await get.text()]).toEqual([200, secret]);
    expect((await api.request("/v2/alpha/web/manifests/v1", { headers: A })).status).toBe(200);
  });

  it("answers another org BLOB_UNKNOWN for the digest through its own repository", async () => {
    const head = await api.request(`/v2/beta/blobs/${digest}`, { method: "HEAD", headers: B });
    expect(head.status).toBe(404);
    const get = await api.request(`/v2/beta/blobs/${digest}`, { headers: B });
    expect([get.status, await errorCode(get)]).toEqual([404, "BLOB_UNKNOWN"]);
  });

  it("does not let another org mount the blob from the owner's repository, nor name it in a manifest", async () => {
    const res = await mount("beta", digest, "alpha/web", B);
    expect(res.status).toBe(202);
    expect(res.headers.get("location")).toMatch(/^\/v2\/beta\/blobs\/uploads\//);
    expect((await api.request(`/v2/beta/blobs/${digest}`, { headers: B })).status).toBe(404);

    const config = JSON.stringify({ os: "linux" });
    expect((await push("beta", config, B)).status).toBe(201);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
      layers: [{ mediaType: MediaType.ociLayerTarGzip, digest, size: secret.length }],
    });
    const put = await api.request("/v2/beta/manifests/stolen", {
      method: "PUT",
      headers: { ...B, "content-type": MediaType.ociManifest },
      body: manifest,
    });
    expect([put.status, await errorCode(put)]).toEqual([404, "MANIFEST_BLOB_UNKNOWN"]);
    expect((await api.request(`/v2/beta/blobs/${digest}`, { headers: B })).status).toBe(404);
  });

  it("lets another org push the same bytes itself, then read them in its repository", async () => {
    const res = await push("beta", secret, B);
    expect(res.status).toBe(201);
    const get = await api.request(`/v2/beta/blobs/${digest}`, { headers: B });
    expect([get.status, await get.text()]).toEqual([200, secret]);
  });

  it("mounts between two repositories of one org", async () => {
    const res = await mount("alpha-two", digest, "alpha/web", A);
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe(`/v2/alpha-two/blobs/${digest}`);
    const get = await api.request(`/v2/alpha-two/blobs/${digest}`, { headers: A });
    expect([get.status, await get.text()]).toEqual([200, secret]);
    // A blob not linked to the source repository does not mount, even within the org.
    const unlinked = digestOf(`never pushed to alpha ${process.pid}`);
    expect((await mount("alpha-two", unlinked, "alpha/web", A)).status).toBe(202);
  });

  it("serves manifests by digest only in the repository that holds them", async () => {
    const { manifest } = await pushImage("alpha/api", "v1", `another layer ${process.pid}`, A);
    const byDigest = `/manifests/${digestOf(manifest)}`;
    expect((await api.request(`/v2/alpha/api${byDigest}`, { headers: A })).status).toBe(200);
    const other = await api.request(`/v2/beta${byDigest}`, { headers: B });
    expect([other.status, await errorCode(other)]).toEqual([404, "MANIFEST_UNKNOWN"]);
  });
});

describe("images the builder pushes", () => {
  it("are pullable through /v2 of their own repository, and only there", async () => {
    const layer = Buffer.from(`builder layer ${process.pid}`);
    const stored = await registry.blobs.putBytes(layer);
    const manifestDigest = await writeImage(registry, {
      repository: "alpha/built",
      tag: "v1",
      layers: [{ digest: stored.digest, size: stored.size }],
      config: {
        architecture: "amd64",
        os: "linux",
        config: {},
        rootfs: { type: "layers", diff_ids: [stored.digest] },
      },
    });
    const manifest = await api.request("/v2/alpha/built/manifests/v1", { headers: A });
    expect(manifest.headers.get("docker-content-digest")).toBe(manifestDigest);
    const { config, layers } = (await manifest.json()) as {
      config: { digest: Digest };
      layers: Array<{ digest: Digest }>;
    };
    for (const d of [config.digest, ...layers.map((l) => l.digest)]) {
      expect((await api.request(`/v2/alpha/built/blobs/${d}`, { headers: A })).status).toBe(200);
      expect((await api.request(`/v2/beta/blobs/${d}`, { headers: B })).status).toBe(404);
    }
  });

  it("keeps serving the blobs of a repository pushed before links existed", async () => {
    // A manifest record with no links: what a repository pushed before this change holds.
    const layer = Buffer.from(`old layer ${process.pid}`);
    const config = Buffer.from(JSON.stringify({ os: "linux" }));
    await registry.blobs.putBytes(layer);
    await registry.blobs.putBytes(config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
        layers: [{ mediaType: MediaType.ociLayerTarGzip, digest: digestOf(layer), size: layer.length }],
      }),
    );
    const kv = await new Kvm(nc).open(`links-test-registry-${process.pid}`);
    const repoToken = Buffer.from("alpha/old").toString("base64url");
    await registry.blobs.putBytes(manifest);
    await kv.put(
      `manifest.${repoToken}.${digestOf(manifest).slice("sha256:".length)}`,
      JSON.stringify({ mediaType: MediaType.ociManifest }),
    );
    expect(await registry.hasBlob("alpha/old", digestOf(layer))).toBe(true);
    const get = await api.request(`/v2/alpha/old/blobs/${digestOf(layer)}`, { headers: A });
    expect([get.status, await get.text()]).toEqual([200, layer.toString()]);
    expect(await registry.hasBlob("alpha/other", digestOf(layer))).toBe(false);
  });
});

import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BlobNotFoundError,
  type Digest,
  DigestMismatchError,
  digestOf,
  isDigest,
  ManifestBlobUnknownError,
  MediaType,
} from "@hangar/oci";
import { createLogger } from "@hangar/telemetry";
import { Hono } from "hono";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { testAuth } from "../../test/auth-fixture.js";
import { registryRoutes } from "./router.js";
import type { RegistryStore } from "./store.js";

/** The registry in maps: enough to see what the HTTP layer asks of it and sends back. */
class MemoryStore implements RegistryStore {
  readonly blobMap = new Map<Digest, Buffer>();
  readonly manifests = new Map<string, { digest: Digest; mediaType: string; bytes: Uint8Array }>();
  readonly tagMap = new Map<string, string[]>();
  /** `<repository>@<digest>` of every blob linked to a repository. */
  readonly linkSet = new Set<string>();

  readonly blobs = {
    has: async (d: Digest) => this.blobMap.has(d),
    size: async (d: Digest) => this.blobMap.get(d)?.byteLength,
    getStream: async (d: Digest) => {
      const bytes = this.blobMap.get(d);
      if (!bytes) throw new BlobNotFoundError(d);
      return (async function* () {
        yield bytes;
      })();
    },
    putStream: async (src: AsyncIterable<Uint8Array>, expected?: Digest) => {
      const chunks: Uint8Array[] = [];
      for await (const c of src) chunks.push(c);
      return this.store(Buffer.concat(chunks), expected);
    },
    putFile: async (path: string, expected?: Digest) => this.store(await readFile(path), expected),
  };

  private store(bytes: Buffer, expected?: Digest) {
    const digest = digestOf(bytes);
    if (expected && expected !== digest) throw new DigestMismatchError(expected, digest);
    this.blobMap.set(digest, bytes);
    return { digest, size: bytes.byteLength };
  }

  async hasBlob(repository: string, digest: Digest) {
    return this.linkSet.has(`${repository}@${digest}`);
  }

  async linkBlob(repository: string, digest: Digest) {
    this.linkSet.add(`${repository}@${digest}`);
  }

  async putManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    opts: { linkedBlobsOnly?: boolean } = {},
  ): Promise<Digest> {
    const m = JSON.parse(Buffer.from(bytes).toString());
    for (const d of [m.config, ...m.layers]) {
      const known = opts.linkedBlobsOnly
        ? await this.hasBlob(repository, d.digest)
        : this.blobMap.has(d.digest);
      if (!known) throw new ManifestBlobUnknownError(d.digest);
    }
    const digest = digestOf(bytes);
    const entry = { digest, mediaType, bytes };
    this.manifests.set(`${repository}@${digest}`, entry);
    if (!isDigest(reference)) {
      this.manifests.set(`${repository}:${reference}`, entry);
      this.tagMap.set(repository, [...(this.tagMap.get(repository) ?? []), reference].sort());
    }
    return digest;
  }

  async getManifest(repository: string, reference: string) {
    return this.manifests.get(
      isDigest(reference) ? `${repository}@${reference}` : `${repository}:${reference}`,
    );
  }

  async tags(repository: string) {
    return this.tagMap.get(repository) ?? [];
  }
}

const { auth: AUTH, token: TOKEN } = testAuth();
const auth = { authorization: `Bearer ${TOKEN}` };
const uploadDir = join(tmpdir(), `gateway-registry-test-${process.pid}`);
let store: MemoryStore;
let app: Hono;

afterAll(() => rm(uploadDir, { recursive: true, force: true }));

beforeEach(() => {
  store = new MemoryStore();
  app = new Hono();
  app.route(
    "/v2",
    registryRoutes({
      store,
      auth: AUTH,
      logger: createLogger("registry-test", { level: "silent" }),
      uploadDir,
    }),
  );
});

const errorCode = async (res: Response) =>
  ((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code;

describe("auth", () => {
  it("challenges without credentials and with a wrong token", async () => {
    const none = await app.request("/v2/");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Basic realm="hangar"');
    expect(await errorCode(none)).toBe("UNAUTHORIZED");
    const wrong = await app.request("/v2/", { headers: { authorization: `Basic ${btoa("x:nope")}` } });
    expect(wrong.status).toBe(401);
  });

  it("takes the token as Bearer or as the Basic password", async () => {
    expect((await app.request("/v2/", { headers: auth })).status).toBe(200);
    const basic = await app.request("/v2/", {
      headers: { authorization: `Basic ${btoa(`anyone:${TOKEN}`)}` },
    });
    expect(basic.status).toBe(200);
    expect(basic.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
  });
});

describe("blobs", () => {
  it("uploads in chunks, then serves the blob by digest", async () => {
    const start = await app.request("/v2/demo/app/blobs/uploads/", { method: "POST", headers: auth });
    expect(start.status).toBe(202);
    const location = start.headers.get("location") as string;
    expect(location).toMatch(/^\/v2\/demo\/app\/blobs\/uploads\/[0-9a-f-]+$/);

    const first = await app.request(location, {
      method: "PATCH",
      headers: { ...auth, "content-range": "0-4" },
      body: "hello",
    });
    expect(first.status).toBe(202);
    expect(first.headers.get("range")).toBe("0-4");
    const outOfOrder = await app.request(location, {
      method: "PATCH",
      headers: { ...auth, "content-range": "9-10" },
      body: "xx",
    });
    expect(outOfOrder.status).toBe(416);
    expect((await app.request(location, { headers: auth })).headers.get("range")).toBe("0-4");

    const digest = digestOf("hello world");
    const done = await app.request(`${location}?digest=${digest}`, {
      method: "PUT",
      headers: auth,
      body: " world",
    });
    expect(done.status).toBe(201);
    expect(done.headers.get("location")).toBe(`/v2/demo/app/blobs/${digest}`);
    expect(done.headers.get("docker-content-digest")).toBe(digest);
    expect((await app.request(location, { headers: auth })).status).toBe(404);

    const head = await app.request(`/v2/demo/app/blobs/${digest}`, { method: "HEAD", headers: auth });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("11");
    const get = await app.request(`/v2/demo/app/blobs/${digest}`, { headers: auth });
    expect(await get.text()).toBe("hello world");
  });

  it("takes a monolithic POST, refuses a wrong digest, and mounts stored blobs", async () => {
    const digest = digestOf("layer");
    const post = await app.request(`/v2/a/blobs/uploads/?digest=${digest}`, {
      method: "POST",
      headers: auth,
      body: "layer",
    });
    expect(post.status).toBe(201);
    const wrong = await app.request(`/v2/a/blobs/uploads/?digest=${digestOf("other")}`, {
      method: "POST",
      headers: auth,
      body: "layer!",
    });
    expect(wrong.status).toBe(400);
    expect(await errorCode(wrong)).toBe("DIGEST_INVALID");

    const mount = await app.request(`/v2/b/c/blobs/uploads/?mount=${digest}&from=a`, {
      method: "POST",
      headers: auth,
    });
    expect(mount.status).toBe(201);
    expect(mount.headers.get("location")).toBe(`/v2/b/c/blobs/${digest}`);
    const unknown = await app.request(`/v2/b/blobs/uploads/?mount=${digestOf("nope")}&from=a`, {
      method: "POST",
      headers: auth,
    });
    expect(unknown.status).toBe(202);
  });

  it("charges new blobs to the repository's org and refuses those past its quota", async () => {
    const used = new Map<string, number>();
    const usage = {
      usedBy: async (org: string) => used.get(org) ?? 0,
      add: async (org: string, bytes: number) => void used.set(org, (used.get(org) ?? 0) + bytes),
    };
    const quotaApp = new Hono();
    quotaApp.route(
      "/v2",
      registryRoutes({
        store,
        auth: AUTH,
        logger: createLogger("registry-test", { level: "silent" }),
        uploadDir,
        quota: { usage, bytesPerOrg: 10 },
      }),
    );
    const push = (body: string) =>
      quotaApp.request(`/v2/demo/blobs/uploads/?digest=${digestOf(body)}`, {
        method: "POST",
        headers: auth,
        body,
      });
    expect((await push("12345678")).status).toBe(201);
    expect(used.get("personal")).toBe(8);
    // A blob the store has costs nothing, even for an org at its quota.
    expect((await push("12345678")).status).toBe(201);
    expect(used.get("personal")).toBe(8);

    const start = await quotaApp.request("/v2/demo/blobs/uploads/", { method: "POST", headers: auth });
    const location = start.headers.get("location") as string;
    const over = await quotaApp.request(`${location}?digest=${digestOf("abc")}`, {
      method: "PUT",
      headers: auth,
      body: "abc",
    });
    expect(over.status).toBe(403);
    expect(await errorCode(over)).toBe("DENIED");
    expect(store.blobMap.has(digestOf("abc"))).toBe(false);
    expect(used.get("personal")).toBe(8);
  });

  it("answers the spec's errors for missing blobs, bad digests, bad names and unknown uploads", async () => {
    const missing = await app.request(`/v2/a/blobs/${digestOf("missing")}`, { headers: auth });
    expect([missing.status, await errorCode(missing)]).toEqual([404, "BLOB_UNKNOWN"]);
    const bad = await app.request("/v2/a/blobs/sha256:xyz", { headers: auth });
    expect([bad.status, await errorCode(bad)]).toEqual([400, "DIGEST_INVALID"]);
    const name = await app.request(`/v2/Bad/Name/blobs/${digestOf("x")}`, { headers: auth });
    expect([name.status, await errorCode(name)]).toEqual([400, "NAME_INVALID"]);
    const upload = await app.request("/v2/a/blobs/uploads/nope", {
      method: "PATCH",
      headers: auth,
      body: "x",
    });
    expect([upload.status, await errorCode(upload)]).toEqual([404, "BLOB_UPLOAD_UNKNOWN"]);
  });
});

describe("manifests and tags", () => {
  async function pushImage(tag: string) {
    const config = Buffer.from("{}");
    store.blobMap.set(digestOf(config), config);
    await store.linkBlob("org/team/app", digestOf(config));
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
      layers: [],
    });
    const res = await app.request(`/v2/org/team/app/manifests/${tag}`, {
      method: "PUT",
      headers: { ...auth, "content-type": MediaType.ociManifest },
      body: manifest,
    });
    return { res, manifest };
  }

  it("puts a manifest by tag and gets it by tag and digest", async () => {
    const { res, manifest } = await pushImage("v1");
    expect(res.status).toBe(201);
    const digest = digestOf(manifest);
    expect(res.headers.get("docker-content-digest")).toBe(digest);
    expect(res.headers.get("location")).toBe(`/v2/org/team/app/manifests/${digest}`);

    for (const ref of ["v1", digest]) {
      const get = await app.request(`/v2/org/team/app/manifests/${ref}`, { headers: auth });
      expect(get.status).toBe(200);
      expect(get.headers.get("content-type")).toBe(MediaType.ociManifest);
      expect(get.headers.get("docker-content-digest")).toBe(digest);
      expect(await get.text()).toBe(manifest);
    }
    const head = await app.request("/v2/org/team/app/manifests/v1", { method: "HEAD", headers: auth });
    expect(head.headers.get("content-length")).toBe(String(manifest.length));
  });

  it("refuses manifests with missing blobs, a wrong digest or a wrong content type", async () => {
    const orphan = JSON.stringify({
      schemaVersion: 2,
      config: { mediaType: MediaType.ociConfig, digest: digestOf("absent"), size: 1 },
      layers: [],
    });
    const put = (ref: string, body: string, type: string = MediaType.ociManifest) =>
      app.request(`/v2/a/manifests/${ref}`, {
        method: "PUT",
        headers: { ...auth, "content-type": type },
        body,
      });
    const missing = await put("v1", orphan);
    expect([missing.status, await errorCode(missing)]).toEqual([404, "MANIFEST_BLOB_UNKNOWN"]);
    const digest = await put(digestOf("other"), orphan);
    expect([digest.status, await errorCode(digest)]).toEqual([400, "DIGEST_INVALID"]);
    const type = await put("v1", orphan, "application/json");
    expect([type.status, await errorCode(type)]).toEqual([400, "MANIFEST_INVALID"]);
    const unknown = await app.request("/v2/a/manifests/v9", { headers: auth });
    expect([unknown.status, await errorCode(unknown)]).toEqual([404, "MANIFEST_UNKNOWN"]);
  });

  it("lists tags, a page at a time", async () => {
    for (const tag of ["a", "b", "c"]) await pushImage(tag);
    const all = await app.request("/v2/org/team/app/tags/list", { headers: auth });
    expect(await all.json()).toEqual({ name: "org/team/app", tags: ["a", "b", "c"] });
    const page = await app.request("/v2/org/team/app/tags/list?n=2", { headers: auth });
    expect(await page.json()).toEqual({ name: "org/team/app", tags: ["a", "b"] });
    expect(page.headers.get("link")).toBe('</v2/org/team/app/tags/list?n=2&last=b>; rel="next"');
    const next = await app.request("/v2/org/team/app/tags/list?n=2&last=b", { headers: auth });
    expect(await next.json()).toEqual({ name: "org/team/app", tags: ["c"] });
    const none = await app.request("/v2/nobody/tags/list", { headers: auth });
    expect([none.status, await errorCode(none)]).toEqual([404, "NAME_UNKNOWN"]);
  });
});
